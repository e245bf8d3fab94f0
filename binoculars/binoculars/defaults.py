"""The default observer/performer pair, the one place it is named (torch-free: the env's configs import it)."""

DEFAULT_OBSERVER = "Qwen/Qwen2.5-0.5B"
DEFAULT_PERFORMER = "Qwen/Qwen2.5-0.5B-Instruct"
