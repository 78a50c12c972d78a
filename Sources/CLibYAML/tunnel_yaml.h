#ifndef TUNNEL_CLIBYAML_H
#define TUNNEL_CLIBYAML_H

/// libyaml's parser from Debian's libyaml-dev, for TunnelYAML: small YAML files composed into
/// nodes without Foundation. Its header is the one Yams vendors (0.2.5, byte for byte), so the
/// `tunnel` binary, which links Yams' copy too, resolves every yaml_* symbol to code of the same ABI.
#include <yaml.h>

#endif
