"""Stage 4, artifact: a built prefix becomes an archive and its manifest.

``formats`` is the one table of archive suffixes, ``content`` decides what an executor
archive or image layer leaves out, ``pack`` writes archives (``tarwriter``/``pgzip``
for tar.gz, ``zipwriter`` for zip), ``manifest`` is the only code that reads or writes
``<archive>.json``, and ``readers`` extracts archives safely.
"""
