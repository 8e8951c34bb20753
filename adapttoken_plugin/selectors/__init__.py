"""Selection strategies, one per file, each registered in `adapttoken_plugin.registry.SELECTORS`."""
