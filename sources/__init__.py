"""Sources: one module or package per source system; each yields canonical records."""
