"""(placeholder: filled in by the metrics work)"""
