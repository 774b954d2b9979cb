"""Stage 5, check: prove an archive runs (``verify``) and links (``elf``) where it lands.

``sparkpath`` finds the pyspark that Spark puts on executors' path, for the imports
check of executor archives.
"""
