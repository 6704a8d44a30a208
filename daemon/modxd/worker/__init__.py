"""The worker boundary: the processes that run the engine, and how the daemon talks to them.

* spawn.py: the daemon's side: start a worker (spawn), pump its messages into the event loop;
* runtime.py: a worker's side: the process entry (`worker_main`), its command inbox and emit,
  `describe_failure` (the sentence a failure is stored with) and `die_with_parent`;
* launch.py: the training worker's entry; with several devices or hosts it is the coordinator of
  the ranks (torch's elastic launcher), relaying rank 0's messages and the daemon's commands;
* rank.py: one rank of a distributed run (`python -m modxd.worker.rank RUN_JSON`);
* chat.py: the chat worker's loop around the engine's model cache and generation.

Arrows: jobs/ -> worker/ -> engine/. The engine never imports this package. Importing this package
is cheap: torch is imported by the engine modules a worker process loads, never here at import.
"""
