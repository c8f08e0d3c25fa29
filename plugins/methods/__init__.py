"""Built-in methods plugins: one module per family, each an entry point of group 'segbench'."""
