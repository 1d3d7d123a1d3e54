// Runs dynalite for the tests: `node .ci/dynalite.js INSTALL_DIR HOST PORT`.
// dynalite rethrows the error of a request whose client went away
// (ECONNRESET, "aborted"), which ends the whole server; the outage tests cut
// connections on purpose, so those errors are logged and ignored here.
'use strict'
const [dir, host, port] = process.argv.slice(2)
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.message === 'aborted')) {
    console.error('dynalite: a client went away:', err.message)
    return
  }
  console.error(err)
  process.exit(1)
})
const dynalite = require(dir + '/node_modules/dynalite')
dynalite({ createTableMs: 50, deleteTableMs: 50, updateTableMs: 50 }).listen(Number(port), host, (err) => {
  if (err) throw err
  console.log('Dynalite listening at: http://' + host + ':' + port)
})
