"""What a person reads: Bokeh plots of a test or a batch (:mod:`.plots`), built from a
stored job (results table and domain curves, the file read again for its breath data:
:mod:`.testdata`) or from in-memory results; papermill batch reports come here too. Bokeh is
imported only by the modules that draw."""
