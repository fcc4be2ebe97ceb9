"""Benchmarks against a running webui through its HTTP API (urllib); no torch. Pillow reads the images, matplotlib
draws the chart and tqdm shows the progress (requirements/tools.txt), each imported only where it is used."""
