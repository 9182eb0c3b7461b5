"""The genja agent process (`genja-agent`, `python -m agent`): holds connections and runs the
tasks a coordinator sends. Its host pipeline also runs in the client process, as the `serial`
and `threaded` runners (`agent._inprocess`); importing this package loads neither gRPC nor a
connection plugin."""
