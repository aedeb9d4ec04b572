"""Training: optimizers (SAM, ASAM), short training and evaluation loops, corruption error."""
