// nodejs/http-parser 2.9 from Debian's libhttp-parser-dev (it ships no pkg-config file, hence the
// plain modulemap). The shims read the parser's bitfields and its errno macro for Swift.
#ifndef TUNNEL_HTTP_PARSER_H
#define TUNNEL_HTTP_PARSER_H

#include <http_parser.h>

static inline unsigned int tunnel_http_errno(const http_parser *parser) { return HTTP_PARSER_ERRNO(parser); }
static inline unsigned int tunnel_http_status(const http_parser *parser) { return parser->status_code; }
static inline unsigned int tunnel_http_method(const http_parser *parser) { return parser->method; }
static inline int tunnel_http_upgrade(const http_parser *parser) { return parser->upgrade; }

#endif
