"""Model families, one file each, registered in `adapttoken_plugin.registry.ADAPTERS`."""
