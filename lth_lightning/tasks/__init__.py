"""What a user runs (``task=``): train (with IMP), fast_ticket, frontier, eval. Tasks decide which stages
exist and build them through the stage engine; they import stages and reports, never each other's internals."""
