"""The Jupyter server extension: the batch HTTP API (upload, status, results, cancel)
inside a running Jupyter server. Imports jupyter_server; needs ``cpet-nb[jupyter]``."""
