"""RKNN (Rockchip NPUs): rknn-toolkit2 in its own venv, driven through a worker process."""
