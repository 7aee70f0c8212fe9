"""One module per scenario; each has NAME, FULL_SIZE and run(backend, size, seed, state) -> Result."""
