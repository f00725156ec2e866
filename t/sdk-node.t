#!/usr/bin/perl

# The official Node SDKs (openai, @anthropic-ai/sdk; versions pinned in
# t/sdk/package-lock.json), unchanged but for base URL and key, through
# the gateway: t/sdk/calls.mjs makes normal and streaming calls (OpenAI
# chat, responses, embeddings; Azure OpenAI chat; Anthropic messages) and
# two refusals, one JSON line per call.  Checked here: what the SDKs got
# (the mock's deterministic answers, streams equal to their non-streamed
# twin, the refusal as the SDK's APIError 403 policy_denied), the three
# evidence records of every call (one trace, outcome, stream flag, usage),
# and what the mock provider received (the provider key, never the
# caller's token).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use JSON::PP;
use IO::Select;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

use FoxGov::Test::Nginx qw(module_path);
use FoxGov::Test::Gateway qw(standard_policy);

my $sdk = "$FindBin::Bin/sdk";

plan skip_all => 'module not built (make)' unless -f module_path();

chomp(my $node = `command -v node 2>/dev/null` // '');
plan skip_all => 'node not found (install Node.js >= 20, e.g. '
    . 'apt-get install nodejs npm)' unless $node && -x $node;

plan skip_all => "SDKs not installed: run (cd t/sdk && npm ci)"
    unless -d "$sdk/node_modules/openai"
        && -d "$sdk/node_modules/\@anthropic-ai/sdk";

my $JSON = JSON::PP->new->utf8->canonical;

my $g = FoxGov::Test::Gateway->new(policy => standard_policy());
$g->start;

my $up = $g->upstream;
my $tok = $g->token;
my $base = 'http://127.0.0.1:' . $g->nginx->port(8080);

# ------------------------------------------------------------- run node

# node calls.mjs, its stdout and stderr, killed after $limit seconds.
sub run_node {
    my ($limit) = @_;

    my $err = $g->dir . '/node.stderr';
    pipe(my $r, my $wr) or die "pipe: $!";
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        close $r;
        open STDOUT, '>&', $wr or POSIX::_exit(126);
        open STDERR, '>', $err or POSIX::_exit(126);
        open STDIN, '<', '/dev/null';
        $ENV{FOXGOV_BASE} = $base;
        $ENV{FOXGOV_TOKEN} = $tok;
        exec $node, "$sdk/calls.mjs" or POSIX::_exit(127);
    }
    close $wr;

    my ($out, $timed_out) = ('', 0);
    my $deadline = time() + $limit;
    my $sel = IO::Select->new($r);
    while (1) {
        my $left = $deadline - time();
        if ($left <= 0) { $timed_out = 1; last }
        next unless $sel->can_read($left);
        my $n = sysread($r, my $buf, 65536);
        last unless $n;
        $out .= $buf;
    }
    close $r;

    # stdout closed: node is exiting; give it 5 s more
    my $end = $timed_out ? 0 : time() + 5;
    my $w;
    sleep 0.02 while ($w = waitpid($pid, WNOHANG)) == 0 && time() < $end;
    if ($w == 0) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    my $rc = $?;

    my $stderr = do { local (@ARGV, $/) = ($err); <> } // '';
    return ($rc, $out, $stderr, $timed_out);
}

my ($rc, $out, $stderr, $timed_out) = run_node(60);
ok(!$timed_out, 'node calls.mjs finished within 60 s');
is($rc, 0, 'node calls.mjs exit status 0') or diag($stderr);
diag("node stderr:\n$stderr") if length $stderr && $rc == 0;

my (%c, @order);
for my $line (split /\n/, $out) {
    my $o = eval { $JSON->decode($line) };
    if (!$o) {
        fail("stdout line is JSON: $line");
        next;
    }
    $c{ $o->{name} } = $o;
    push @order, $o->{name};
}
note("calls: @order");

# ------------------------------------------------------- what the SDKs got

# The mock's answer (FoxGov::Test::Upstream's POD): "Summary: " and the
# first 40 characters of the last user message, whitespace collapsed.
sub answer {
    my ($s) = @_;
    $s = substr($s, 0, 40);
    $s =~ s/\s+/ /g;
    $s =~ s/^ //;
    $s =~ s/ $//;
    return 'Summary: ' . (length $s ? $s : '(empty)');
}

my @ok_calls = qw(openai.chat openai.chat.stream openai.responses
    openai.responses.stream openai.embeddings azure.chat azure.chat.stream
    anthropic.messages anthropic.messages.stream
    anthropic.messages.create-stream);

for my $name (@ok_calls) {
    my $o = $c{$name};
    ok($o, "$name: called") or next;
    ok($o->{ok}, "$name: the SDK call succeeded")
        or diag($JSON->encode($o->{error} // $o));
    is($o->{status}, 200, "$name: HTTP 200");
    like($o->{execution_id} // '', qr/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/,
         "$name: FoxGov-Execution-Id read through the SDK's raw response");
    my $want = $name eq 'openai.embeddings' ? '1 x 8' : answer($o->{prompt});
    is($o->{text}, $want, "$name: the answer");
}

for my $pair (['openai.chat', 'openai.chat.stream'],
              ['openai.responses', 'openai.responses.stream'],
              ['azure.chat', 'azure.chat.stream'],
              ['anthropic.messages', 'anthropic.messages.stream'],
              ['anthropic.messages', 'anthropic.messages.create-stream'])
{
    my ($plain, $stream) = map { $c{$_} } @$pair;
    next unless $plain && $stream && $plain->{ok} && $stream->{ok};
    is($stream->{text}, $plain->{text},
       "$pair->[1]: streamed text equals $pair->[0]'s");
    my @words = split / /, $plain->{text};
    is(scalar @{ $stream->{deltas} // [] }, scalar @words,
       "$pair->[1]: one delta per word");
}

if (my $s = $c{'anthropic.messages.stream'}) {
    is($s->{final_text}, $s->{text},
       'anthropic.messages.stream: finalMessage() has the streamed text');
}
if (my $s = $c{'openai.chat.stream'}) {
    is_deeply([ @{ $s->{usage} // {} }{qw(prompt_tokens completion_tokens)} ],
        [ @{ $c{'openai.chat'}{usage} // {} }{qw(prompt_tokens
            completion_tokens)} ],
        'openai.chat.stream: include_usage chunk has the usage of the '
        . 'non-streamed call');
}

# ----------------------------------------------------------- the refusal

{
    my $o = $c{'openai.refusal'};
    ok($o && $o->{ok}, 'refusal: the SDK threw an APIError')
        or diag($JSON->encode($o // {}));
    $o //= {};
    is($o->{status}, 403, 'refusal: err.status 403');
    is($o->{error_class}, 'PermissionDeniedError',
       'refusal: OpenAI.PermissionDeniedError');
    ok($o->{is_permission_denied}, 'refusal: instanceof '
       . 'PermissionDeniedError');
    is($o->{code}, 'policy_denied', 'refusal: err.code policy_denied');
    is($o->{error_code}, 'policy_denied',
       'refusal: err.error.code policy_denied');
    is($o->{error}{type}, 'foxgov_error', 'refusal: err.error.type');
    is($o->{error}{execution_id}, $o->{execution_id},
       'refusal: err.error.execution_id is the header\'s (err.headers)');
    like($o->{text} // '', qr/^403 default: DENY/,
         'refusal: err.message');
}

# The refusals are documented as OpenAI-shaped on every route
# (docs/directives.md, "Status codes and error codes"), so the Anthropic
# SDK keeps the whole body in err.error: err.error.error.code.
{
    my $o = $c{'anthropic.refusal'};
    ok($o && $o->{ok}, 'anthropic refusal: the SDK threw an APIError')
        or diag($JSON->encode($o // {}));
    $o //= {};
    is($o->{status}, 403, 'anthropic refusal: err.status 403');
    is($o->{error_class}, 'PermissionDeniedError',
       'anthropic refusal: Anthropic.PermissionDeniedError');
    is($o->{error}{error}{code}, 'policy_denied',
       'anthropic refusal: err.error.error.code policy_denied');
    is($o->{error}{error}{execution_id}, $o->{execution_id},
       'anthropic refusal: execution_id in body and header agree');
}

# ------------------------------------------------------------- records

# Calls whose records must carry token usage (the fields): the non-streamed
# chat, the include_usage stream, and Anthropic's (usage is always in its
# stream); and the others that report it (responses, Azure non-streamed;
# embeddings have input tokens only).  The Azure stream asks for no usage.
my @io = qw(input_tokens output_tokens);
my %need_usage = ((map { $_ => \@io } qw(openai.chat openai.chat.stream
    anthropic.messages anthropic.messages.stream
    anthropic.messages.create-stream openai.responses
    openai.responses.stream azure.chat)),
    'openai.embeddings' => [ 'input_tokens' ]);

# usage the SDK saw, as the record names it
sub sdk_usage {
    my ($u) = @_;
    return undef unless ref $u eq 'HASH';
    return { input_tokens => $u->{input_tokens} // $u->{prompt_tokens},
             output_tokens => $u->{output_tokens}
                              // $u->{completion_tokens} };
}

my %trace_of;    # trace_id => call name

for my $name (@ok_calls, 'openai.refusal', 'anthropic.refusal') {
    my $o = $c{$name} or next;
    my $exec = $o->{execution_id};
    ok($exec, "$name: has an execution id") or next;

    my $call = $g->wait_call_record($exec);
    ok($call, "$name: call record written") or next;

    my @recs = $g->records_for($exec);
    my %by = map { $_->{type} => $_ } @recs;
    is(scalar @recs, 3, "$name: three records");
    is_deeply([ sort keys %by ],
              [ qw(AuthContext ModelCallRecord PolicyDecisionRecord) ],
              "$name: AuthContext, PolicyDecisionRecord, ModelCallRecord");

    my %tids = map { ($_->{record}{trace}{trace_id} // '') => 1 } @recs;
    is(scalar keys %tids, 1, "$name: one trace_id in the three records");
    my ($tid) = keys %tids;
    $trace_of{$tid} = $name;

    my $dec = $by{PolicyDecisionRecord}{record};
    is($by{PolicyDecisionRecord}{hash}, $o->{decision_hash},
       "$name: FoxGov-Decision-Hash is the decision's envelope_hash");

    my $rc = $call->{record};
    is($rc->{stream} ? 1 : 0, $o->{stream} ? 1 : 0,
       "$name: stream flag " . ($o->{stream} ? 'true' : 'false'));

    if ($name =~ /\.refusal$/) {
        is($dec->{decision}, 'DENY', "$name: decision DENY");
        is($rc->{outcome}, 'denied', "$name: outcome denied");
        is($rc->{status}, 403, "$name: recorded status 403");
        next;
    }

    is($dec->{decision}, 'ALLOW', "$name: decision ALLOW");
    is($rc->{outcome}, 'completed', "$name: outcome completed")
        or diag(explain($rc));
    is($rc->{status}, 200, "$name: recorded status 200");

    my $u = $rc->{usage};
    if (my $f = $need_usage{$name}) {
        ok(ref $u eq 'HASH' && !grep({ !defined $u->{$_} } @$f),
           "$name: usage extracted into the record (@$f)")
            or diag('record usage: ' . $JSON->encode($u));
        my $su = sdk_usage($o->{usage});
        is_deeply({ map { $_ => $u->{$_} } @$f },
                  { map { $_ => $su->{$_} } @$f },
                  "$name: recorded usage is what the SDK saw")
            if ref $u eq 'HASH' && $su;
    } else {
        note("$name: record usage " . $JSON->encode($u)
             . ', SDK usage ' . $JSON->encode($o->{usage}));
    }
}

# ------------------------------------------------- what the mock received

my %cred = (
    openai    => [ authorization => 'Bearer sk-openai-test' ],
    azure     => [ 'api-key'     => 'azure-test-key' ],
    anthropic => [ 'x-api-key'   => 'sk-ant-test' ],
);
my %other = (openai => [ 'x-api-key', 'api-key' ],
             azure => [ 'authorization', 'x-api-key' ],
             anthropic => [ 'authorization', 'api-key' ]);

my @reqs = grep { $_->{path} ne "/mock/health" } $up->requests;
is(scalar @reqs, scalar @ok_calls,
   'the mock received one request per allowed call (none for the '
   . 'refusals)');

for my $req (@reqs) {
    my $h = $req->{headers};
    my ($tid) = ($h->{traceparent} // '') =~ /^00-([0-9a-f]{32})-/;
    my $name = $tid && $trace_of{$tid} // "$req->{method} $req->{path}";
    ok($tid && $trace_of{$tid}, "$name: upstream request carries the "
       . 'call\'s trace (traceparent)');

    my $prov = $req->{path} =~ m{^/openai/} ? 'azure'
             : $req->{path} eq '/v1/messages' ? 'anthropic' : 'openai';
    my ($hn, $hv) = @{ $cred{$prov} };
    is($h->{$hn}, $hv, "$name: upstream $hn is the provider key");
    ok(!exists $h->{$_}, "$name: no $_ upstream") for @{ $other{$prov} };
    unlike(join("\n", map { "$_: $h->{$_}" } sort keys %$h)
           . "\n$req->{path}?" . ($req->{query} // '') . "\n$req->{body}",
           qr/\Q$tok\E/, "$name: the caller token is not forwarded");

    if ($prov eq 'azure') {
        is($req->{query}, 'api-version=2024-10-21',
           "$name: the SDK's api-version passes");
        is($req->{path}, '/openai/deployments/my-deployment/chat/completions',
           "$name: deployment path");
    }
    if ($prov eq 'anthropic') {
        ok($h->{'anthropic-version'}, "$name: anthropic-version passes");
    }
    if ($name eq 'openai.chat.stream') {
        my $b = eval { $JSON->decode($req->{body}) } // {};
        ok($b->{stream_options}{include_usage},
           "$name: stream_options.include_usage reached the provider");
    }
}

# ------------------------------------------------------------- the log

is($g->stop, 0, 'nginx stops cleanly');
my ($ok, @bad) = $g->nginx->error_log_ok();
ok($ok, 'no alerts in error.log') or diag(join "\n", @bad);

my ($keep, @lines) = (1);
for (split /\n/, $g->nginx->read_file('error.log')) {
    $keep = !/\[debug\]/ || /foxgov/ if m{^\d{4}/\d\d/\d\d };
    push @lines, $_ if $keep;
}
my $log = join "\n", @lines;
unlike($log, qr/\Q$tok\E/, 'the token never reaches a log line');
unlike($log, qr/sk-openai-test|sk-ant-test|azure-test-key/,
       'no provider key reaches a log line');

done_testing();
