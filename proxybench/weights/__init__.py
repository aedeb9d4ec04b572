"""Weight providers: how a network gets its weights before it is scored (init, short training, supernet)."""
