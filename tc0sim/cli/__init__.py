"""The click command line of tc0sim (parses, calls the library, prints)."""
