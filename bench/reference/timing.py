"""The one timing loop of the PyTorch references: a few warm-up steps, then as many steps as fit
in `seconds`; returns training samples per second."""
import time


def samples_per_second(step, batch, seconds, warmup=5):
    for i in range(warmup):
        step(i)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(n)
        n += 1
    return n * batch / (time.perf_counter() - start)
