"""Built-in datasets plugins: one module per family, each an entry point of group 'segbench'."""
