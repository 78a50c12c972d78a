import Foundation

/// xterm.js from Debian, served from its install path rather than embedded in the binary: the
/// console stays small, and a security update of the package reaches it without a rebuild.
///
/// Debian 12's `libjs-xterm` ships only a stub for browsers (`xterm.js` that `require`s modules
/// it does not contain); the modules themselves are in `node-xterm`, as CommonJS. The console
/// joins them into one script when it starts, each module wrapped in a function and linked by
/// a small `require` of its own. Nothing is evaluated from strings, so the CSP needs no
/// 'unsafe-eval'.
enum XtermBundle {
    static let modules = "/usr/share/nodejs/xterm/lib"
    static let stylesheet = "/usr/share/javascript/xterm/xterm.css"
    static let packages = "node-xterm (its modules) and libjs-xterm (its stylesheet)"

    /// The script, or nil with the reason when the packages are not installed.
    static func build() -> Result<(script: [UInt8], stylesheet: [UInt8]), XtermMissing> {
        guard let style = FileManager.default.contents(atPath: stylesheet),
            let walker = FileManager.default.enumerator(atPath: modules)
        else {
            return .failure(XtermMissing(message: "xterm.js is not installed (\(packages)); the shell player is off"))
        }
        var script = "(function () {\n'use strict';\nvar definitions = {}, loaded = {};\n"
        script += """
            function resolve(from, request) {
              var parts = from.split('/'); parts.pop();
              request.split('/').forEach(function (part) { if (part === '..') parts.pop(); else if (part !== '.') parts.push(part); });
              var id = parts.join('/');
              if (definitions[id]) return id;
              if (definitions[id + '/index']) return id + '/index';
              throw new Error('xterm bundle: no module ' + request + ' from ' + from);
            }
            function load(id) {
              if (loaded[id]) return loaded[id].exports;
              var module = { exports: {} };
              loaded[id] = module;
              definitions[id](function (request) { return load(resolve(id, request)); }, module, module.exports);
              return module.exports;
            }

            """
        var count = 0
        for case let path as String in walker
        where path.hasSuffix(".js") && !path.hasSuffix(".test.js") && !path.hasPrefix("addons/") && path != "xterm.js" {
            guard let source = try? String(contentsOfFile: "\(modules)/\(path)", encoding: .utf8) else { continue }
            let id = String(path.dropLast(3))
            script += "definitions['\(id)'] = function (require, module, exports) {\n\(source)\n};\n"
            count += 1
        }
        guard count > 0 else {
            return .failure(XtermMissing(message: "no xterm.js modules under \(modules); the shell player is off"))
        }
        script += "window.Terminal = load('public/Terminal').Terminal;\n})();\n"
        return .success((Array(script.utf8), Array(style)))
    }
}

struct XtermMissing: Error {
    let message: String
}
