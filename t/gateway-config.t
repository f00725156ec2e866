#!/usr/bin/perl

# nginx -t and the module's directives: every misconfiguration the module
# detects makes "nginx -t" fail with an [emerg] that names a clear reason
# and the file:line of the directive at fault (the line marked "#!" in
# each block below), and never quotes a credential's secret.  The checks
# made when the configuration is merged (foxgov_call without
# foxgov_auth_keys or foxgov_policy_bundle) name the foxgov_call's line,
# not the end of http{}.  Then the positive cases: a schema that compiles,
# foxgov_token_cache off, a custom foxgov_zone, foxgov_auth_keys and
# foxgov_policy_bundle written after the location that needs them, and
# inheritance of foxgov_auth_keys and foxgov_credential, checked with real
# calls through the gateway and the mock upstream.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Path qw(make_path);
use File::Temp ();
use JSON::PP;
use Test::More;

use FoxGov::Test::Nginx qw(module_path nginx_binary blocks);
use FoxGov::Test::Fixtures qw(:all);
use FoxGov::Test::Gateway qw(standard_policy throttle_window);

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'nginx missing' unless -x nginx_binary();
plan skip_all => 'CLI not built' unless -x foxgov_bin();

my $JSON = JSON::PP->new->utf8->canonical;

# A secret no message may ever print, not even in part.
my $SECRET = 'sk-ZQX9secretPART';

# ------------------------------------------------------------- fixtures

my $fxdir = File::Temp->newdir('foxgov-cfg-XXXXXXXX', TMPDIR => 1,
    CLEANUP => !$ENV{FOXGOV_TEST_KEEP});
my $fx = "$fxdir";
chmod 0755, $fx;
make_path("$fx/creds", "$fx/schemas");

my (undef, $auth_jwks) = keygen("$fx/keys", 'caller', 'EdDSA');
my ($bundle_pem, $bundle_jwks) = keygen("$fx/keys", 'bundler', 'EdDSA');
build_bundle(dir => "$fx/bundle-src", policy => standard_policy(),
    key => $bundle_pem, tar => 1, out => "$fx/bundle.tar.gz");

sub spew {
    my ($path, $bytes) = @_;
    open my $fh, '>:raw', $path or die "$path: $!";
    print {$fh} $bytes;
    close $fh or die "$path: $!";
}

spew("$fx/creds/good", "sk-good-test\n");
spew("$fx/creds/empty", '');
spew("$fx/creds/blank", "\n\r\n  \n");
spew("$fx/creds/cr", "${SECRET}A\rB${SECRET}\n");
spew("$fx/creds/lf", "${SECRET}A\nB${SECRET}\n");
spew("$fx/creds/space", "${SECRET}A B${SECRET}\n");
spew("$fx/creds/tab", "${SECRET}A\tB${SECRET}\n");
spew("$fx/not-a-key.txt", "hello, I am not a key\n");
spew("$fx/empty-object.json", "{}\n");
spew("$fx/schemas/good.json", $JSON->encode(
    FoxGov::Test::Gateway::snow_schema()));
spew("$fx/schemas/invalid.json", '{"type": "object", ');
spew("$fx/schemas/unsupported.json",
     '{"type":"object","frobnicate":{"x":1}}');

my %MACRO = (
    FX     => $fx,
    BUNDLE => "foxgov_policy_bundle $fx/bundle.tar.gz keys=$bundle_jwks;",
    AUTH   => "foxgov_auth_keys $auth_jwks;",
    CRED   => "foxgov_credential openai file=$fx/creds/good;",
);

sub expand {
    my ($text) = @_;
    $text //= '';
    $text =~ s/%%(FX|BUNDLE|AUTH|CRED)%%/$MACRO{$1}/g;
    return $text;
}

# ------------------------------------------------------ negative blocks

# Each block: --- http_config, --- config (inside server{}), --- error (a
# regex the [emerg] line must match), optionally --- secret: yes (the
# output must not hold any part of $SECRET).  The line holding "#!" is the
# directive at fault; the [emerg] must end with "in <nginx.conf>:<line>".

for my $blk (blocks()) {
    subtest $blk->{name} => sub {
        my $t = FoxGov::Test::Nginx->new();
        my $conf = $t->testdir . '/nginx.conf';

        $t->write_config(expand($blk->{http_config}) . "\n"
            . "    server {\n"
            . "        listen 127.0.0.1:%%PORT_8080%%;\n"
            . "        server_name localhost;\n"
            . expand($blk->{config}) . "\n"
            . "    }\n");

        my @lines = split /\n/, $t->read_file('nginx.conf');
        my @marked = grep { $lines[$_ - 1] =~ /#!/ } 1 .. @lines;
        die "block '$blk->{name}': mark one line with #!\n"
            unless @marked == 1;
        my $line = $marked[0];

        my ($rc, $out) = $t->test_config();

        isnt($rc, 0, 'nginx -t fails') or diag($out);

        my @emerg = grep { /\[emerg\]/ } split /\n/, $out;
        is(scalar @emerg, 1, 'one [emerg] line') or diag($out);
        my $e = $emerg[0] // '';

        like($e, qr/$blk->{error}/, 'the reason') or diag($out);
        like($e, qr/ in \Q$conf\E:\d+$/, 'names nginx.conf and a line')
            or diag($out);
        my ($got) = $e =~ / in \Q$conf\E:(\d+)$/;
        is($got, $line, "the line is $line, the directive at fault: "
           . ($lines[$line - 1] =~ s/^\s+|\s*#!.*$//gr))
            or diag("line $got is: " . ($lines[($got // 1) - 1] // ''));
        unlike($out, qr/\[(?:alert|crit)\]|Sanitizer|runtime error/,
               'no alert, no crash');

        if ($blk->{secret}) {
            for my $part ($SECRET, substr($SECRET, 3, 8), 'A B', "A\tB") {
                unlike($out, qr/\Q$part\E/,
                       "the secret is not printed ('$part')");
            }
        }
    };
}

# ------------------------------------------------------ positive cases

# nginx -t accepts: a schema that compiles, foxgov_token_cache off and a
# number, a custom foxgov_zone, foxgov_auth_keys at http level used by a
# location, foxgov_body_max at its bounds, ttl= equal to check=.
{
    my $t = FoxGov::Test::Nginx->new();
    $t->write_config(<<"EOF");
    foxgov_policy_bundle $fx/bundle.tar.gz keys=$bundle_jwks ttl=10s check=10s;
    foxgov_auth_keys $auth_jwks;
    foxgov_approval_keys $auth_jwks ttl=15m;
    foxgov_zone custom:1m;
    foxgov_token_cache off;
    foxgov_trace require;
    foxgov_body_max 64m;

    server {
        listen 127.0.0.1:%%PORT_8080%%;
        server_name localhost;

        location /v1/ {
            foxgov_call model openai;
            foxgov_body_max 1;
            foxgov_credential openai file=$fx/creds/good header=x-api-key;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }
        location /tool/ {
            foxgov_call tool servicenow.incident action=write risk=medium
                        schema=$fx/schemas/good.json;
            foxgov_trace ingress;
            foxgov_credential a file=$fx/creds/good tenant=acme;
            foxgov_credential b file=$fx/creds/good tenant=beta;
            foxgov_credential c file=$fx/creds/good;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }
    }
EOF
    my ($rc, $out) = $t->test_config();
    is($rc, 0, 'positive: schema, token_cache off, custom zone, bounds '
       . 'accepted') or diag($out);

    (my $c = $t->read_file('nginx.conf'))
        =~ s/foxgov_token_cache off;/foxgov_token_cache 16777216;/;
    $t->write_file('nginx.conf', $c);
    ($rc, $out) = $t->test_config();
    is($rc, 0, 'positive: foxgov_token_cache 16777216') or diag($out);
}

# nginx -t accepts foxgov_auth_keys at server level after the location
# that inherits it, and foxgov_policy_bundle after the server block: both
# are looked for when the configuration is merged, not at foxgov_call.
{
    my $t = FoxGov::Test::Nginx->new();
    $t->write_config(<<"EOF");
    server {
        listen 127.0.0.1:%%PORT_8080%%;
        server_name localhost;

        location /v1/ {
            foxgov_call model openai;
            foxgov_credential openai file=$fx/creds/good;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }

        foxgov_auth_keys $auth_jwks;
    }

    foxgov_policy_bundle $fx/bundle.tar.gz keys=$bundle_jwks;
EOF
    my ($rc, $out) = $t->test_config();
    is($rc, 0, 'positive: foxgov_auth_keys and foxgov_policy_bundle after '
       . 'the location') or diag($out);
}

# A real gateway: foxgov_token_cache off, a custom zone (the throttle
# counts live there: with foxgov_zone no other zone is made),
# foxgov_auth_keys at http level only, a credential at server level
# inherited by a location without its own, and a location with its own
# credential, which does not inherit the server's.  The THROTTLE rule's
# window is one whose current window has ten minutes left, so its count
# is not reset between the calls.
{
    my $policy = standard_policy();
    my ($rule) = grep { $_->{id} eq 'throttle-ws' } @{ $policy->{rules} };
    die "standard_policy() has no throttle-ws rule\n" unless $rule;
    $rule->{limits}{window_seconds} = throttle_window(3600, 600);

    my $g = FoxGov::Test::Gateway->new(policy => $policy,
        http_config => "foxgov_token_cache off;\n    foxgov_zone custom:1m;",
        config => <<'EOF');
        foxgov_credential srv-openai file=%%TESTDIR%%/creds/openai_default;

        location /inh/ {
            rewrite ^/inh(/.*)$ $1 break;
            foxgov_call model openai;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }

        location /own/ {
            rewrite ^/own(/.*)$ $1 break;
            foxgov_call model openai;
            foxgov_credential beta-only file=%%TESTDIR%%/creds/openai
                              tenant=beta;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }

        location /ownall/ {
            rewrite ^/ownall(/.*)$ $1 break;
            foxgov_call model openai;
            foxgov_credential wrong file=%%TESTDIR%%/creds/anthropic;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }
EOF
    $g->start;
    my $up = $g->upstream;
    my $tok = $g->token;
    my $body = { model => 'gpt-4o',
                 messages => [ { role => 'user', content => 'hi' } ] };

    # token cache off: the same token verifies each time (a cache hit
    # cannot be seen from outside: this checks that none is needed)
    for my $n (1, 2) {
        $up->clear_log;
        my $r = $g->request(POST => '/inh/v1/chat/completions',
                            token => $tok, body => $body);
        is($r->{status}, 200, "inherited server credential: 200 ($n)")
            or diag($r->{raw});
        my @req = $up->requests;
        is($req[0]{headers}{authorization} // '', 'Bearer sk-openai-test',
           "the server-level credential was sent ($n)");
    }

    $up->clear_log;
    my $r = $g->request(POST => '/own/v1/chat/completions', token => $tok,
                        body => $body);
    is($r->{status}, 403,
       'own credential (tenant beta): acme is not served with the server\'s')
        or diag($r->{raw});
    is($r->{json}{error}{code}, 'credential_unavailable',
       'own credential: credential_unavailable');
    is(scalar $up->requests, 0, 'own credential: nothing forwarded');

    $up->clear_log;
    $r = $g->request(POST => '/own/v1/chat/completions',
                     token => $g->token(tenant => 'beta'), body => $body);
    is($r->{status}, 200, 'own credential: beta is served') or diag($r->{raw});
    is(($up->requests)[0]{headers}{authorization} // '',
       'Bearer sk-openai-test', 'own credential: its own secret was sent');

    $up->clear_log;
    $r = $g->request(POST => '/ownall/v1/chat/completions', token => $tok,
                     body => $body);
    my @req = $up->requests;
    is(scalar @req, 1, 'own credential for every tenant: forwarded');
    is($req[0]{headers}{authorization} // '', 'Bearer sk-ant-test',
       'own credential for every tenant: the location\'s, not the server\'s');

    # the custom zone holds the THROTTLE counters
    my $ws = $g->token(workspace => 'ws-throttle');
    my @st = map { $g->request(POST => '/v1/chat/completions', token => $ws,
                               body => $body)->{status} } 1 .. 5;
    is_deeply(\@st, [200, 200, 200, 200, 429],
              'custom foxgov_zone: THROTTLE counts in it');

    is($g->stop, 0, 'nginx stops cleanly');
    my ($ok, @bad) = $g->nginx->error_log_ok();
    ok($ok, 'no alerts') or diag(join "\n", @bad);
}

done_testing();

__DATA__

=== foxgov_call: unknown kind
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call service openai; #!
    }
--- error: invalid call kind "service" in "foxgov_call": expected model or tool

=== foxgov_call: unknown provider
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model mistral; #!
    }
--- error: unknown model provider "mistral" in "foxgov_call": expected openai, azure_openai or anthropic

=== foxgov_call model: two providers
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai anthropic; #!
    }
--- error: "foxgov_call model" takes one provider

=== foxgov_call: bad tool id
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /t/ {
        foxgov_call tool ServiceNow/Incident action=read; #!
    }
--- error: invalid tool id "ServiceNow/Incident" in "foxgov_call": expected

=== foxgov_call tool: only a tool id
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /t/ {
        foxgov_call tool slack.chat; #!
    }
--- error: "foxgov_call tool" needs a tool id and action=read or action=write

=== foxgov_call tool: missing action=
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /t/ {
        foxgov_call tool slack.chat risk=low; #!
    }
--- error: "foxgov_call tool slack.chat" needs action=read or action=write

=== foxgov_call: bad action
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /t/ {
        foxgov_call tool slack.chat action=delete; #!
    }
--- error: invalid action "delete" in "foxgov_call": expected read or write

=== foxgov_call: bad risk
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /t/ {
        foxgov_call tool slack.chat action=write risk=extreme; #!
    }
--- error: invalid risk "extreme" in "foxgov_call": expected low, medium or high

=== foxgov_call: unknown parameter
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /t/ {
        foxgov_call tool slack.chat action=write timeout=5s; #!
    }
--- error: invalid parameter "timeout=5s" in "foxgov_call"

=== foxgov_call: duplicate
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_call model anthropic; #!
    }
--- error: "foxgov_call" directive is duplicate

=== foxgov_call without foxgov_auth_keys
--- http_config
    %%BUNDLE%%
--- config
    location /v1/ {
        foxgov_call model openai; #!
        %%CRED%%
    }
--- error: "foxgov_call" needs "foxgov_auth_keys" in this location or above it

=== foxgov_call without foxgov_policy_bundle
--- http_config
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai; #!
        %%CRED%%
    }
--- error: "foxgov_call" needs "foxgov_policy_bundle" in http\{\}

=== foxgov_policy_bundle without keys=
--- http_config
    foxgov_policy_bundle %%FX%%/bundle.tar.gz ttl=600s; #!
    %%AUTH%%
--- config
    location /v1/ { foxgov_call model openai; }
--- error: "foxgov_policy_bundle" needs keys=<jwks>: an unsigned bundle is never used

=== foxgov_policy_bundle: bad ttl
--- http_config
    foxgov_policy_bundle %%FX%%/bundle.tar.gz keys=%%FX%%/keys/bundler.jwks.json ttl=soon; #!
    %%AUTH%%
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid time in "ttl=soon" of "foxgov_policy_bundle"

=== foxgov_policy_bundle: ttl 0
--- http_config
    foxgov_policy_bundle %%FX%%/bundle.tar.gz keys=%%FX%%/keys/bundler.jwks.json ttl=0; #!
    %%AUTH%%
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid time in "ttl=0" of "foxgov_policy_bundle"

=== foxgov_policy_bundle: bad check
--- http_config
    foxgov_policy_bundle %%FX%%/bundle.tar.gz keys=%%FX%%/keys/bundler.jwks.json check=-1s; #!
    %%AUTH%%
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid time in "check=-1s" of "foxgov_policy_bundle"

=== foxgov_policy_bundle: ttl shorter than check
--- http_config
    foxgov_policy_bundle %%FX%%/bundle.tar.gz keys=%%FX%%/keys/bundler.jwks.json ttl=5s check=10s; #!
    %%AUTH%%
--- config
    location /v1/ { foxgov_call model openai; }
--- error: "foxgov_policy_bundle" ttl is shorter than its check interval

=== foxgov_policy_bundle: unknown parameter
--- http_config
    foxgov_policy_bundle %%FX%%/bundle.tar.gz keys=%%FX%%/keys/bundler.jwks.json refresh=1s; #!
    %%AUTH%%
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid parameter "refresh=1s" in "foxgov_policy_bundle"

=== foxgov_policy_bundle: duplicate
--- http_config
    %%BUNDLE%%
    %%BUNDLE%% #!
    %%AUTH%%
--- config
    location /v1/ { foxgov_call model openai; }
--- error: "foxgov_policy_bundle" directive is duplicate

=== foxgov_policy_bundle: keys= a missing file
--- http_config
    foxgov_policy_bundle %%FX%%/bundle.tar.gz keys=%%FX%%/keys/nope.jwks.json; #!
    %%AUTH%%
--- config
    location /v1/ { foxgov_call model openai; }
--- error: cannot load the bundle keys "[^"]*/nope.jwks.json": .*No such file

=== foxgov_policy_bundle: in a server block
--- http_config
    %%AUTH%%
--- config
    %%BUNDLE%% #!
--- error: "foxgov_policy_bundle" directive is not allowed here

=== foxgov_auth_keys: a missing file
--- http_config
    %%BUNDLE%%
    foxgov_auth_keys %%FX%%/keys/missing.jwks.json; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: cannot load keys from "[^"]*/missing.jwks.json": cannot open .*No such file or directory

=== foxgov_auth_keys: a file that is not a key
--- http_config
    %%BUNDLE%%
    foxgov_auth_keys %%FX%%/not-a-key.txt; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: cannot load keys from "[^"]*/not-a-key.txt": \S

=== foxgov_auth_keys: a JSON object without keys
--- http_config
    %%BUNDLE%%
    foxgov_auth_keys %%FX%%/empty-object.json; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: cannot load keys from "[^"]*/empty-object.json": \S

=== foxgov_auth_keys: duplicate
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    %%AUTH%% #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: "foxgov_auth_keys" directive is duplicate

=== foxgov_auth_keys: a second argument
--- http_config
    %%BUNDLE%%
    foxgov_auth_keys %%FX%%/keys/caller.jwks.json ttl=1h; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid number of arguments in "foxgov_auth_keys"

=== foxgov_approval_keys: bad ttl=
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_approval_keys %%FX%%/keys/caller.jwks.json ttl=forever; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid approval request ttl "forever"

=== foxgov_approval_keys: ttl=0
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_approval_keys %%FX%%/keys/caller.jwks.json ttl=0s; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid approval request ttl "0s"

=== foxgov_approval_keys: unknown parameter
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_approval_keys %%FX%%/keys/caller.jwks.json max=3; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid parameter "max=3" in "foxgov_approval_keys"

=== foxgov_credential without file=
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai tenant=acme; #!
    }
--- error: "foxgov_credential openai" needs file=<path>

=== foxgov_credential: a missing file
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds/missing; #!
    }
--- error: open\(\) "[^"]*/creds/missing" failed \(2: No such file or directory\)

=== foxgov_credential: a directory
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds; #!
    }
--- error: "[^"]*/creds" is not a regular file of at most 8192 bytes

=== foxgov_credential: an empty file
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds/empty; #!
    }
--- error: credential file "[^"]*/creds/empty" is empty

=== foxgov_credential: only white space
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds/blank; #!
    }
--- error: credential file "[^"]*/creds/blank" is empty

=== foxgov_credential: a CR inside the secret
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds/cr; #!
    }
--- error: credential file "[^"]*/creds/cr" holds a byte that cannot be sent in a header \(at offset 18\)
--- secret: yes

=== foxgov_credential: an LF inside the secret
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds/lf; #!
    }
--- error: credential file "[^"]*/creds/lf" holds a byte that cannot be sent in a header \(at offset 18\)
--- secret: yes

=== foxgov_credential: a space inside the secret
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds/space; #!
    }
--- error: credential file "[^"]*/creds/space" holds a byte that cannot be sent in a header \(at offset 18\)
--- secret: yes

=== foxgov_credential: a tab inside the secret
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds/tab; #!
    }
--- error: credential file "[^"]*/creds/tab" holds a byte that cannot be sent in a header \(at offset 18\)
--- secret: yes

=== foxgov_credential: bad tenant=
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds/good tenant=Acme_Corp!; #!
    }
--- error: invalid tenant id "Acme_Corp!" in "foxgov_credential": expected

=== foxgov_credential: empty tenant=
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds/good tenant=; #!
    }
--- error: invalid tenant id "" in "foxgov_credential"

=== foxgov_credential: bad header=
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds/good header=X-Api-Key; #!
    }
--- error: invalid header name "X-Api-Key" in "foxgov_credential": expected lowercase letters, digits and '-'

=== foxgov_credential: empty header=
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds/good header=; #!
    }
--- error: empty header= in "foxgov_credential"

=== foxgov_credential: unknown parameter
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential openai file=%%FX%%/creds/good scheme=basic; #!
    }
--- error: invalid parameter "scheme=basic" in "foxgov_credential"

=== foxgov_credential: two for the same tenant in one block
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_credential a file=%%FX%%/creds/good tenant=acme;
        foxgov_credential b file=%%FX%%/creds/good tenant=acme; #!
    }
--- error: a second "foxgov_credential" for tenant acme in the same block

=== foxgov_credential: two for every tenant in one block
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    foxgov_credential a file=%%FX%%/creds/good;
    foxgov_credential b file=%%FX%%/creds/good; #!
    location /v1/ { foxgov_call model openai; }
--- error: a second "foxgov_credential" for every tenant in the same block

=== foxgov_body_max 0
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_body_max 0; #!
    }
--- error: invalid value "0" in "foxgov_body_max" directive: it must be 1 to 64m

=== foxgov_body_max 100m
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_body_max 100m; #!
    }
--- error: invalid value "100m" in "foxgov_body_max" directive: it must be 1 to 64m

=== foxgov_body_max 100m at http level, inherited
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_body_max 100m; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid value "100m" in "foxgov_body_max" directive: it must be 1 to 64m

=== foxgov_body_max 100m where no location is governed
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    foxgov_body_max 100m; #!
    location /plain/ { return 204; }
--- error: invalid value "100m" in "foxgov_body_max" directive: it must be 1 to 64m

=== foxgov_body_max: not a size
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_body_max lots; #!
    }
--- error: "foxgov_body_max" directive invalid value

=== foxgov_zone: no size
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_zone counters; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid zone "counters" in "foxgov_zone": expected <name>:<size>

=== foxgov_zone: no name
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_zone :10m; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid zone ":10m" in "foxgov_zone": expected <name>:<size>

=== foxgov_zone: bad size
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_zone counters:big; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid size of zone "counters:big" in "foxgov_zone": at least \d+k

=== foxgov_zone: too small
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_zone counters:4k; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid size of zone "counters:4k" in "foxgov_zone": at least 32k

=== foxgov_zone: duplicate
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_zone a:1m;
    foxgov_zone b:1m; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: "foxgov_zone" directive is duplicate

=== foxgov_zone: a name another module uses
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    limit_req_zone $binary_remote_addr zone=shared:1m rate=1r/s;
    foxgov_zone shared:1m; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: shared memory zone "shared" is already declared for a different use|zone "shared" is already used

=== foxgov_token_cache: bad value
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_token_cache lots; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid "foxgov_token_cache" "lots": expected 1 to 16777216 entries, or off

=== foxgov_token_cache: 0
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_token_cache 0; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid "foxgov_token_cache" "0"

=== foxgov_token_cache: too many
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_token_cache 16777217; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid "foxgov_token_cache" "16777217"

=== foxgov_token_cache: duplicate
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_token_cache 10;
    foxgov_token_cache off; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: "foxgov_token_cache" directive is duplicate

=== foxgov_redis: a host name (hiredis would resolve it synchronously)
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis localhost:6379; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid address "localhost:6379" in "foxgov_redis": an IPv4 address and a port, or unix:<path>

=== foxgov_redis: no port
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis 127.0.0.1; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid address "127.0.0.1" in "foxgov_redis"

=== foxgov_redis: bad timeout
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis 127.0.0.1:6379 timeout=soon; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid parameter "timeout=soon" in "foxgov_redis"

=== foxgov_redis: backlog too small
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis 127.0.0.1:6379 backlog=1k; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid value "backlog=1k" in "foxgov_redis": backlog is at least 64k

=== foxgov_redis: backlog not a size
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis 127.0.0.1:6379 backlog=lots; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid value "backlog=lots" in "foxgov_redis": backlog is at least 64k

=== foxgov_redis: bad db
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis 127.0.0.1:6379 db=x; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid parameter "db=x" in "foxgov_redis"

=== foxgov_redis: password_file missing
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis 127.0.0.1:6379 password_file=/nonexistent/redis.pw; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: "/nonexistent/redis.pw" failed

=== foxgov_redis: several addresses without "cluster"
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis 127.0.0.1:7001 127.0.0.1:7002; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: several addresses in "foxgov_redis" are the seeds of a Redis Cluster: add "cluster" after them

=== foxgov_redis: cluster with a unix socket
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis unix:/tmp/redis.sock cluster; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: takes IP:PORT addresses of cluster nodes, not "unix:/tmp/redis.sock"

=== foxgov_redis: cluster with db=
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis 127.0.0.1:7001 cluster db=1; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: "db=1" in "foxgov_redis ... cluster": a Redis Cluster has database 0 only

=== foxgov_redis: cluster without an address
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis cluster timeout=1s; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: no address in "foxgov_redis"

=== foxgov_redis: cluster seed a host name
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis 127.0.0.1:7001 redis2:7002 cluster; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid address "redis2:7002" in "foxgov_redis"

=== foxgov_redis: cluster, a parameter after "cluster" that is none
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis 127.0.0.1:7001 cluster 127.0.0.1:7002; #!
    foxgov_spool /tmp;
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid parameter "127.0.0.1:7002" in "foxgov_redis"

=== foxgov_redis: without foxgov_spool
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis 127.0.0.1:6379; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: "foxgov_redis" needs "foxgov_spool": records Redis does not take wait in the spool

=== foxgov_evidence: strict without foxgov_redis
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_evidence strict;
        foxgov_call model openai; #!
    }
--- error: "foxgov_evidence strict" needs "foxgov_redis" in http\{\}

=== foxgov_evidence: unknown mode
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_evidence sometimes; #!
        foxgov_call model openai;
    }
--- error: invalid value "sometimes"

=== foxgov_spool: without foxgov_redis
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_spool /tmp; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: "foxgov_spool" without "foxgov_redis"

=== foxgov_spool: max_size too small
--- http_config
    %%BUNDLE%%
    %%AUTH%%
    foxgov_redis 127.0.0.1:6379;
    foxgov_spool /tmp max_size=1k; #!
--- config
    location /v1/ { foxgov_call model openai; }
--- error: invalid value "max_size=1k" in "foxgov_spool": max_size is at least 64k

=== foxgov_trace: bad value
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /v1/ {
        foxgov_call model openai;
        foxgov_trace always; #!
    }
--- error: invalid value "always"

=== schema= a missing file
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /t/ {
        foxgov_call tool slack.chat action=write schema=%%FX%%/schemas/missing.json; #!
    }
--- error: open\(\) "[^"]*/schemas/missing.json" failed \(2: No such file or directory\)

=== schema= invalid JSON
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /t/ {
        foxgov_call tool slack.chat action=write schema=%%FX%%/schemas/invalid.json; #!
    }
--- error: input schema "[^"]*/schemas/invalid.json" is not canonical JSON: \S

=== schema= an unsupported keyword
--- http_config
    %%BUNDLE%%
    %%AUTH%%
--- config
    location /t/ {
        foxgov_call tool slack.chat action=write schema=%%FX%%/schemas/unsupported.json; #!
    }
--- error: input schema "[^"]*/schemas/unsupported.json" does not compile: .*(unsupported keyword|frobnicate)
