"""genja's benchmarks against Nornir: `python -m bench` (see bench/_driver.py)."""
