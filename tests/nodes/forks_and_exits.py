#!/usr/bin/env python3
# Bug class: a node that exits while a process it forked still holds its
# stdout (issue 24, item 5). The runner noticed exits by stdout closing, so
# it never saw this one: the run ended `unknown` after 14 s without a word,
# and the child outlived the runner. It must fail at once ("exited before
# the test ended"), and the child must be killed with the node's group.
"""A single-node counter that, at its 10th request, forks a child that
sleeps for a minute holding stdin, stdout and stderr, and exits. The
child prints its pid on stderr (the node's log) for the test to check."""

import os
import sys
import threading
import time

from maelstrom import GCounterState, Node

node = Node()
counter = GCounterState(node)
lock = threading.Lock()
requests = 0


def count_request():
    """At the 10th request, forks the child and exits."""
    global requests
    with lock:
        requests += 1
        if requests < 10:
            return
        if os.fork() == 0:
            sys.stderr.write("child pid %d\n" % os.getpid())
            sys.stderr.flush()
            time.sleep(60)
            os._exit(0)
        os._exit(0)


@node.handler("add")
def add(msg):
    counter.handle_add(msg)
    count_request()


@node.handler("read")
def read(msg):
    counter.handle_read(msg)
    count_request()


if __name__ == "__main__":
    node.run()
