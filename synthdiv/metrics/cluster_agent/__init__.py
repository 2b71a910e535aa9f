"""(placeholder: the LLM cluster-agent)"""
