"""LLM backends: embedded (llama.cpp GGUF), vllm (ray.data.llm), openai (HTTP)."""
