import { startVirshShellEarly, virshShellArgv } from '../host/virshprocess.js';
import { earlyConnection } from './connection.js';

// Everything the tool and the programs it runs create (layers, memory state, dumps, replicas) is private.
process.umask(0o077);
const argv = process.argv.slice(2);
// Before the rest of the tool loads: virsh starts and connects to libvirt while it does.
const uri = earlyConnection(argv, process.env);
if (uri !== undefined) startVirshShellEarly(virshShellArgv(uri));
void import('./main.js')
  .then(({ main }) => main(argv))
  .then((code) => {
    process.exitCode = code;
  });
