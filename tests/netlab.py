"""Tiny programs run inside test network namespaces: a server that answers with a name,
and a client that reports each answer or the error's name."""

# python -c NAME_SERVER NAME PORT: accept forever, send NAME, close.
NAME_SERVER = ("import socket, sys\n"
               "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
               "s.bind(('0.0.0.0', int(sys.argv[2]))); s.listen(64)\n"
               "while True:\n"
               "    c, _ = s.accept(); c.sendall(sys.argv[1].encode()); c.close()\n")

# python -c CLIENT IP PORT N: N connections, one line each: the answer or the error's name.
CLIENT = ("import socket, sys\n"
          "for _ in range(int(sys.argv[3])):\n"
          "    try:\n"
          "        c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n"
          "        print(c.recv(100).decode()); c.close()\n"
          "    except OSError as e:\n"
          "        print(type(e).__name__)\n")
