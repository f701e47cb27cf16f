"""What the oracles return, read as a materials scientist would: task documents, CHGNet relaxations,
elemental references, formation energies and distances to the convex hull. Pure functions over
pymatgen objects and plain documents; no database, no FireWorks."""
