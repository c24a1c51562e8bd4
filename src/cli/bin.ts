import { openLibvirtEarly } from '../host/libvirtrpc.js';
import { defaultTimeouts } from '../host/timeouts.js';
import { startVirshShellEarly, virshShellArgv } from '../host/virshprocess.js';
import { earlyConnection } from './connection.js';

// Everything the tool and the programs it runs create (layers, memory state, dumps, replicas) is private.
process.umask(0o077);
const argv = process.argv.slice(2);
// Before the rest of the tool loads: the connection to libvirt (the local daemon's socket, else a
// virsh shell) is made while it does.
const uri = earlyConnection(argv, process.env);
if (uri !== undefined && !openLibvirtEarly(uri, defaultTimeouts.virshMs))
  startVirshShellEarly(virshShellArgv(uri));
void import('./main.js')
  .then(({ main }) => main(argv))
  .then((code) => {
    process.exitCode = code;
  });
