"""A discovery campaign: its spec, its rounds as FireWorks workflows, and the steps each Firetask runs."""
