"""Built-in metrics plugins: one module per family, each an entry point of group 'segbench'."""
