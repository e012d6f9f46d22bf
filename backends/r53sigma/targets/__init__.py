"""Per-target renderings of the field catalogue: each target reads only r53sigma.catalogue."""
