import Glibc
import PosternBase
import SpoolDrop

// postern-drop: the drop path alone, as sendmail(1) (issue #13).
//
// Installed set-group-ID to the spool's drop group, it is the one program every
// local user runs with a privilege, so it holds nothing else: the standard
// library, Glibc, PosternBase and SpoolDrop, linked statically. `postern drop`,
// `postern sendmail` and a link named `sendmail` all end here; a link named
// `mailq` (or -bp) hands over to `postern list`.

let arguments = Array(CommandLine.arguments.dropFirst())
let invokedAs = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? "sendmail"
// `postern drop` execs this program as "postern drop" so that messages name the command the user typed.
let program = invokedAs == "postern-drop" ? "sendmail" : invokedAs
if invokedAs == "mailq" {
    DropProgram.listQueue(arguments)
}
exit(DropProgram.run(arguments, program: program))
