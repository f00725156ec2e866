#!/usr/bin/perl

# The enforcing request path against real nginx and the mock providers:
# each row of DESIGN.md's status table, the invariants (INV-INT-002/003/
# 004/005, no forward without a decision, deny by default, tenant isolation
# of credentials), approvals (single use, bound to the input), ROUTE, the
# token sources, and the records each call leaves.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Test::More;

use FoxGov::Test::Nginx qw(module_path nginx_binary);
use FoxGov::Test::Fixtures qw(run_foxgov foxgov_bin);
use FoxGov::Test::Gateway qw(standard_policy);

plan skip_all => 'module not built' unless -f module_path();
plan skip_all => 'CLI not built' unless -x foxgov_bin();

my $JSON = JSON::PP->new->utf8->canonical;

my $g = FoxGov::Test::Gateway->new(
    prices => { currency => 'USD', unit => 'per_million_tokens',
                models => { 'gpt-4o-2024-08-06' => { input => 2.5,
                                                     output => 10 } } });
$g->start;

my $up = $g->upstream;
my $tok = $g->token;

sub chat {
    my (%o) = @_;
    return { model => $o{model} // 'gpt-4o',
             messages => [ { role => 'user',
                             content => $o{content} // 'hello there' } ],
             (exists $o{max_tokens} ? (max_tokens => $o{max_tokens}) : ()) };
}

sub exec_id { return $_[0]{headers}{'foxgov-execution-id'} }

# The three records of a call, checked for what every call must show:
# the same execution_id and trace_id, envelope hashes over the whole
# canonical record, the hash links, and schema validity (the CLI).
sub check_records {
    my ($r, $name, %want) = @_;

    my $exec = exec_id($r);
    my $call = $g->wait_call_record($exec);
    ok($call, "$name: call record written") or return;

    my @recs = $g->records_for($exec);
    my %by = map { $_->{type} => $_ } @recs;
    is(scalar @recs, 3, "$name: three records") or diag(explain(\@recs));

    my ($auth, $dec) = @by{qw(AuthContext PolicyDecisionRecord)};
    ok($auth && $dec, "$name: AuthContext and PolicyDecisionRecord")
        or return;

    for my $rec (@recs) {
        is(sha256_hex($rec->{canonical}), $rec->{hash},
           "$name: $rec->{type} envelope_hash is sha256 of its JCS bytes");
        is($rec->{record}{execution_id}, $exec,
           "$name: $rec->{type} execution_id");
        my ($rc, undef, $err) = run_foxgov({ stdin => $rec->{canonical} },
                                           'validate', 'record', '-');
        is($rc, 0, "$name: $rec->{type} is schema-valid") or diag($err);
    }

    my %tids = map { $_->{record}{trace}{trace_id} => 1 } @recs;
    is(scalar keys %tids, 1, "$name: one trace_id in every record");

    is($dec->{record}{auth_context_sha256}, $auth->{hash},
       "$name: decision links its AuthContext");
    is($call->{record}{policy_decision_sha256}, $dec->{hash},
       "$name: call record links its decision");
    is($r->{headers}{'foxgov-decision-hash'}, $dec->{hash},
       "$name: FoxGov-Decision-Hash is the decision's envelope_hash");

    is($dec->{record}{decision}, $want{decision}, "$name: decision")
        if $want{decision};
    is($call->{record}{outcome}, $want{outcome}, "$name: outcome")
        if $want{outcome};
    is($call->{record}{status}, $r->{status}, "$name: recorded status");

    return { auth => $auth->{record}, decision => $dec->{record},
             call => $call->{record}, trace_id => (keys %tids)[0] };
}

# ------------------------------------------------------------ ALLOW

{
    $up->clear_log;
    my $r = $g->request(POST => '/v1/chat/completions', token => $tok,
        headers => [ 'FoxGov-Labels' => 'ticket=INC0010001, team=ops' ],
        body => chat());
    is($r->{status}, 200, 'ALLOW: upstream status') or diag($r->{raw});
    like(exec_id($r), qr/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/,
         'ALLOW: FoxGov-Execution-Id is a UUIDv7');
    is($r->{json}{model}, 'gpt-4o-2024-08-06', 'ALLOW: the model answered');

    my @reqs = $up->requests;
    is(scalar @reqs, 1, 'ALLOW: forwarded once');
    my $h = $reqs[0]{headers};
    is($h->{authorization}, 'Bearer sk-openai-test',
       'ALLOW: the provider credential replaces the caller token');
    unlike(join("\n", values %$h), qr/\Q$tok\E/,
           'ALLOW: the token never reaches the upstream');
    ok(!exists $h->{'foxgov-labels'}, 'ALLOW: foxgov headers stay here');
    ok(!exists $h->{'accept-encoding'},
       'ALLOW: no Accept-Encoding (the response must be readable)');

    my $rc = check_records($r, 'ALLOW', decision => 'ALLOW',
                           outcome => 'completed');
    like($h->{traceparent}, qr/^00-$rc->{trace_id}-([0-9a-f]{16})-01$/,
         'ALLOW: upstream traceparent carries the trace');
    my ($span) = $h->{traceparent} =~ /^00-[0-9a-f]{32}-([0-9a-f]{16})/;
    is($span, $rc->{call}{trace}{span_id},
       'ALLOW: upstream span is the call\'s span');
    is_deeply($rc->{call}{usage}, { input_tokens => $r->{json}{usage}
        {prompt_tokens}, output_tokens => $r->{json}{usage}
        {completion_tokens}, total_tokens => $r->{json}{usage}
        {total_tokens} }, 'ALLOW: usage from the JSON response');
    is($rc->{call}{response_model}, 'gpt-4o-2024-08-06',
       'ALLOW: response_model');
    is($rc->{call}{response}{sha256}, sha256_hex($r->{body}),
       'ALLOW: response BlobRef is the hash of the relayed bytes');
    is($rc->{call}{response}{size_bytes}, length $r->{body},
       'ALLOW: response size');
    is($rc->{call}{upstream_request_id}, $r->{headers}{'x-request-id'},
       'ALLOW: upstream_request_id');
    is_deeply($rc->{call}{labels}, { ticket => 'INC0010001', team => 'ops' },
       'ALLOW: labels');
    is_deeply($rc->{call}{redactions_applied}, ['header:authorization'],
       'ALLOW: redactions name the removed token header');
    is_deeply($rc->{decision}{permissions_checked}, ['model:gpt-4o'],
       'ALLOW: permissions_checked');
    my $canon_req = $JSON->encode(chat());
    is($rc->{call}{request}{sha256}, sha256_hex($canon_req),
       'ALLOW: request BlobRef is sha256 of the canonical body');
    ok(!defined $rc->{call}{cost},
       'ALLOW: no price for gpt-4o-2024-08-06? (priced below)')
        if 0;
    is($rc->{call}{cost}{price_source}, 'bundle:r1/prices.json',
       'ALLOW: cost from the bundle prices');
}

# -------------------------------------------------------------- DENY

{
    $up->clear_log;
    my $r = $g->request(POST => '/v1/chat/completions', token => $tok,
        body => chat(model => 'gpt-3.5-turbo'));
    is($r->{status}, 403, 'deny by default: 403');
    is($r->{json}{error}{code}, 'policy_denied', 'deny: code');
    is($r->{json}{error}{type}, 'foxgov_error', 'deny: OpenAI-shaped');
    like($r->{json}{error}{message}, qr/default: DENY/, 'deny: says default');
    is($r->{json}{error}{execution_id}, exec_id($r), 'deny: execution_id');
    is($r->{json}{error}{decision_hash}, $r->{headers}{'foxgov-decision-hash'},
       'deny: decision_hash');
    is(scalar $up->requests, 0, 'deny: nothing forwarded');
    my $rc = check_records($r, 'DENY default', decision => 'DENY',
                           outcome => 'denied');
    is_deeply($rc->{decision}{rule_ids}, [], 'deny default: no rule');

    $r = $g->request(POST => '/v1/chat/completions', token => $tok,
        body => chat(max_tokens => 5000));
    is($r->{status}, 403, 'DENY by rule: 403');
    like($r->{json}{error}{message}, qr/deny-big-completions/,
         'DENY by rule: names the rule');
    $rc = check_records($r, 'DENY rule', decision => 'DENY');
    is($rc->{decision}{input}{body}{'/max_tokens'}, 5000,
       'DENY rule: the body value it read is recorded');
    is(scalar $up->requests, 0, 'DENY rule: nothing forwarded');
}

# ------------------------------------------------------- bad token

{
    my $n = () = $g->records;
    my $r = $g->request(POST => '/v1/chat/completions', token => 'abc.def.ghi',
        body => chat());
    is($r->{status}, 401, 'bad token: 401');
    is($r->{json}{error}{code}, 'invalid_token', 'bad token: code');
    like($r->{headers}{'www-authenticate'}, qr/^Bearer error="invalid_token"/,
         'bad token: WWW-Authenticate');
    ok(!defined $r->{json}{error}{decision_hash}, 'bad token: no decision');
    sleep 0.2;
    is(scalar(() = $g->records), $n,
       'INV-INT-004: a refused token leaves no decision and no record');

    $r = $g->request(POST => '/v1/chat/completions', body => chat());
    is($r->{status}, 401, 'no token: 401');
    is($r->{json}{error}{code}, 'missing_token', 'no token: code');
}

# -------------------------------------------------- token sources

for my $src (['FoxGov-Auth', $tok], ['x-api-key', $tok], ['api-key', $tok]) {
    $up->clear_log;
    my $r = $g->request(POST => '/v1/chat/completions',
        headers => [ $src->[0] => $src->[1] ], body => chat());
    is($r->{status}, 200, "token in $src->[0]: 200");
    my ($req) = $up->requests;
    ok(!exists $req->{headers}{lc $src->[0]},
       "token in $src->[0]: header removed upstream");
    my $rc = check_records($r, "token in $src->[0]");
    is($rc->{auth}{token_source}, lc $src->[0],
       "token in $src->[0]: token_source");
}

# ------------------------------------------------------ capability

{
    $up->clear_log;
    my $narrow = $g->token(caps => [ 'model:gpt-4o-mini*' ]);
    my $r = $g->request(POST => '/v1/chat/completions', token => $narrow,
        body => chat());
    is($r->{status}, 403, 'capability gate: 403');
    is($r->{json}{error}{code}, 'capability_denied', 'capability: code');
    my $rc = check_records($r, 'capability', decision => 'DENY');
    is_deeply([ map { "$_->{gate}=$_->{result}" }
                @{ $rc->{decision}{gates_evaluated} } ],
              [ 'authn=pass', 'schema=pass', 'capability=fail' ],
              'capability: gates');
    is(scalar $up->requests, 0, 'capability: nothing forwarded');
}

# ------------------------------------------------ malformed, schema

{
    my $r = $g->request(POST => '/v1/chat/completions', token => $tok,
        body => '{"model":"gpt-4o","model":"x"}');
    is($r->{status}, 400, 'duplicate key: 400');
    is($r->{json}{error}{code}, 'invalid_request', 'duplicate key: code');
    check_records($r, 'malformed', decision => 'DENY', outcome => 'denied');

    $r = $g->request(POST => '/v1/chat/completions', token => $tok,
        body => '{"messages":[]}');
    is($r->{status}, 400, 'no model: 400');

    $r = $g->request(POST => '/v1/chat/complete', token => $tok,
        body => chat());
    is($r->{status}, 400, 'unknown endpoint: 400');
    is($r->{json}{error}{code}, 'unknown_endpoint', 'unknown endpoint: code');

    $r = $g->request(PATCH => '/api/now/table/incident/'
        . '9d385017c611228701d22104cc95c371', token => $tok,
        body => { category => 'network', colour => 'red' });
    is($r->{status}, 400, 'tool schema violation: 400');
    is($r->{json}{error}{code}, 'schema_violation', 'schema: code');
    like($r->{json}{error}{message}, qr{/colour: property not allowed},
         'schema: names the field');
    my $rc = check_records($r, 'schema', decision => 'DENY');
    ok($rc->{call}{input_schema_sha256}, 'schema: input_schema_sha256');

    $r = $g->request(POST => '/v1/chat/completions', token => $tok,
        headers => [ 'FoxGov-Labels' => 'Bad Key=1' ], body => chat());
    is($r->{status}, 400, 'bad labels: 400');
    is($r->{json}{error}{code}, 'invalid_labels', 'bad labels: code');

    $r = $g->request(POST => '/v1/chat/completions', token => $tok,
        body => '{"model":"gpt-4o","pad":"' . ('x' x 70000) . '"}');
    is($r->{status}, 413, 'body over foxgov_body_max: 413');
    is($r->{json}{error}{code}, 'body_too_large', '413: code');
    $rc = check_records($r, '413', decision => 'DENY', outcome => 'denied');
    ok(!defined $rc->{call}{request}, '413: request not read (null)');
}

# --------------------------------------------------------- step-up

{
    my $r = $g->request(POST => '/github/repos/x', token => $tok,
        body => { a => 1 });
    is($r->{status}, 401, 'REQUIRE_STEP_UP: 401');
    is($r->{headers}{'www-authenticate'},
       'Bearer error="insufficient_user_authentication", '
       . 'error_description="a stronger authentication is required", '
       . 'acr_values="urn:foxgov:acr:mfa"', 'step-up: RFC 9470 header');
    is($r->{json}{error}{code}, 'step_up_required', 'step-up: code');
    my $rc = check_records($r, 'step-up', decision => 'REQUIRE_STEP_UP');
    is($rc->{decision}{acr_values}, 'urn:foxgov:acr:mfa', 'step-up: acr');
    is_deeply($rc->{decision}{rule_ids}, [ 'allow-github', 'step-up-github' ],
              'step-up: the rules that counted');

    # the client steps up: a token with the acr the rule asked for
    my $mfa = $g->token(acr => 'urn:foxgov:acr:mfa');
    $r = $g->request(POST => '/github/', token => $mfa,
        body => { a => 1 });
    is($r->{status}, 200, 'stepped up: the call is forwarded')
        or diag($r->{raw});
    is($r->{json}{path}, '/mock/echo', 'stepped up: the upstream got it');
    $rc = check_records($r, 'stepped up', decision => 'ALLOW');
    is($rc->{decision}{input}{acr}, 'urn:foxgov:acr:mfa',
       'stepped up: the acr is in the decision input');
    is_deeply($rc->{decision}{rule_ids}, [ 'allow-github' ],
              'stepped up: only the ALLOW counted');

    # another acr is not the one asked for
    $r = $g->request(POST => '/github/repos/x',
        token => $g->token(acr => 'urn:foxgov:acr:pwd'), body => { a => 1 });
    is($r->{status}, 401, 'a weaker acr is asked again');
}

# ----------------------------------------------------- HITL, approval

{
    $up->clear_log;
    my $path = '/api/now/table/incident/9d385017c611228701d22104cc95c371';
    my $body = { category => 'network', priority => '2',
                 work_notes => 'triaged by the agent' };
    my $r = $g->request(PATCH => $path, token => $tok, body => $body);
    is($r->{status}, 428, 'REQUIRE_HITL: 428');
    is($r->{json}{error}{code}, 'approval_required', 'HITL: code');
    my $req = $r->{json}{error}{approval};
    is($req->{tool}, 'servicenow.incident', 'HITL: request names the tool');
    is($req->{action}, 'write', 'HITL: action');
    is($req->{tenant_id}, 'acme', 'HITL: tenant');
    is($req->{input_sha256}, sha256_hex($JSON->encode($body)),
       'HITL: bound to the canonical input hash');
    my $rc = check_records($r, 'HITL', decision => 'REQUIRE_HITL');
    is($rc->{decision}{approval_request_id}, $req->{approval_request_id},
       'HITL: the record names the approval request');
    is(scalar $up->requests, 0, 'HITL: held, not forwarded');

    my $approval = $g->approval($req);

    # an approval for other input is refused: still held
    my $other = { %$body, priority => '1' };
    $r = $g->request(PATCH => $path, token => $tok, body => $other,
        headers => [ 'FoxGov-Approval' => $approval ]);
    is($r->{status}, 428, 'approval for other input: still 428');
    like($r->{json}{error}{message}, qr/other input/,
         'approval for other input: says so');
    is(scalar $up->requests, 0, 'approval for other input: not forwarded');

    $r = $g->request(PATCH => $path, token => $tok, body => $body,
        headers => [ 'FoxGov-Approval' => $approval ]);
    is($r->{status}, 200, 'approved retry: 200') or diag($r->{raw});
    is($r->{json}{result}{priority}, '2', 'approved retry: written');
    $rc = check_records($r, 'approved', decision => 'ALLOW',
                        outcome => 'completed');
    is($rc->{decision}{input}{approval}{input_sha256}, $req->{input_sha256},
       'approved: the approval is in the decision input');
    ok((grep { $_->{gate} eq 'approval' && $_->{result} eq 'pass' }
        @{ $rc->{decision}{gates_evaluated} }), 'approved: gate pass');
    my @reqs = $up->requests;
    is(scalar @reqs, 1, 'approved: forwarded once');
    ok(!exists $reqs[0]{headers}{'foxgov-approval'},
       'approved: the approval token stays here');
    is($reqs[0]{headers}{authorization}, 'Bearer snow-test-token',
       'approved: the tool credential');

    $r = $g->request(PATCH => $path, token => $tok, body => $body,
        headers => [ 'FoxGov-Approval' => $approval ]);
    is($r->{status}, 428, 'approval replayed: 428 again');
    like($r->{json}{error}{message}, qr/already been used/,
         'approval replayed: says so');
    is(scalar $up->requests, 1, 'approval replayed: not forwarded');

    $r = $g->request(PATCH => $path, token => $tok, body => $body,
        headers => [ 'FoxGov-Approval' => $approval . 'x' ]);
    is($r->{status}, 401, 'broken approval token: 401');
    is($r->{json}{error}{code}, 'invalid_approval', 'broken approval: code');
}

# --------------------------------------------------------- tool read

{
    $up->clear_log;
    my $r = $g->request(GET => '/api/now/table/incident?sysparm_query='
        . 'number=INC0010001', token => $tok);
    is($r->{status}, 200, 'tool read: 200');
    my $rc = check_records($r, 'tool read', decision => 'ALLOW',
                           outcome => 'completed');
    is($rc->{call}{query_sha256}, sha256_hex('sysparm_query=number=INC0010001'),
       'tool read: query_sha256 over the raw query');
    ok(!defined $rc->{call}{request}, 'tool read: no body, request null');
    is($rc->{call}{risk}, 'low', 'tool read: risk');
}

# --------------------------------------------------------------- ROUTE

{
    $g->upstream2->clear_log;
    $up->clear_log;
    my $eu = $g->token(tenant => 'acme-eu');
    my $r = $g->request(POST => '/v1/chat/completions', token => $eu,
        body => chat());
    is($r->{status}, 200, 'ROUTE: 200') or diag($r->{raw});
    my $rc = check_records($r, 'ROUTE', decision => 'ROUTE');
    is($rc->{decision}{route}, 'eu', 'ROUTE: the route is recorded');
    is(scalar $g->upstream2->requests, 1, 'ROUTE: $foxgov_route chose '
       . 'the eu upstream');
    is(scalar $up->requests, 0, 'ROUTE: not the default upstream');
    my ($req) = $g->upstream2->requests;
    is($req->{headers}{authorization}, 'Bearer sk-openai-eu-test',
       'ROUTE: the credential bound to acme-eu');
}

# --------------------------------------------------- tenant isolation

{
    $up->clear_log;
    my $beta = $g->token(tenant => 'beta');
    my $r = $g->request(POST => '/iso/v1/chat/completions', token => $beta,
        body => chat());
    is($r->{status}, 403, 'credential bound to acme: beta is refused');
    is($r->{json}{error}{code}, 'credential_unavailable', 'isolation: code');
    is(scalar $up->requests, 0, 'isolation: nothing forwarded for beta');
    check_records($r, 'isolation', outcome => 'denied');

    $r = $g->request(POST => '/iso/v1/chat/completions', token => $tok,
        body => chat());
    is($r->{status}, 200, 'credential bound to acme: acme is served');
}

# ----------------------------------------------------------- THROTTLE

{
    my $ws = $g->token(workspace => 'ws-throttle');
    my @st = map {
        $g->request(POST => '/v1/chat/completions', token => $ws,
                    body => chat())->{status} } 1 .. 5;
    is_deeply(\@st, [200, 200, 200, 200, 429],
              'THROTTLE: 4 per window, then 429');
    my $r = $g->request(POST => '/v1/chat/completions', token => $ws,
        body => chat());
    is($r->{status}, 429, 'THROTTLE: still 429');
    is($r->{headers}{'retry-after'}, '3600', 'THROTTLE: Retry-After');
    is($r->{json}{error}{code}, 'rate_limited', 'THROTTLE: code');
    my $rc = check_records($r, 'THROTTLE', decision => 'THROTTLE');
    is($rc->{decision}{input}{counters}{'throttle-ws'}{requests}, 4,
       'THROTTLE: the counter read is recorded');
}

# ------------------------------------------- chunked body over the bound

{
    my $tokh = "Authorization: Bearer $tok\r\n";
    my $big = 'x' x 40000;
    my $raw = "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n${tokh}Content-Type: application/json\r\n"
            . "Transfer-Encoding: chunked\r\n\r\n"
            . sprintf("%x\r\n%s\r\n", length $big, $big)
            . sprintf("%x\r\n%s\r\n", length $big, $big) . "0\r\n\r\n";
    my $r = FoxGov::Test::Gateway::parse_response($g->nginx->http($raw));
    is($r->{status}, 413, 'chunked body over foxgov_body_max: 413');
    my $exec = $r->{headers}{'foxgov-execution-id'};
    my $call = $exec && $g->wait_call_record($exec);
    ok($call, 'chunked 413: recorded');
    is($call && $call->{record}{outcome}, 'denied', 'chunked 413: denied');
}

# ------------------------------- no call is forwarded without a decision

{
    my %allowed;
    for my $rec ($g->records) {
        next unless $rec->{type} eq 'PolicyDecisionRecord';
        next unless $rec->{record}{decision} =~ /^(ALLOW|ROUTE)$/;
        my $t = $rec->{record}{trace};
        $allowed{"$t->{trace_id}-$t->{span_id}"} = 1;
    }
    my @fwd = ($up->requests, $g->upstream2->requests);
    my @orphans = grep {
        my ($tid, $sid) = ($_->{headers}{traceparent} // '')
            =~ /^00-([0-9a-f]{32})-([0-9a-f]{16})-/;
        !$tid || !$allowed{"$tid-$sid"};
    } grep { $_->{path} ne '/mock/health' } @fwd;
    is(scalar @orphans, 0, 'every call the upstreams received has an '
       . 'ALLOW/ROUTE decision record with its trace and span')
        or diag(explain(\@orphans));
}

# -------------------------------------------------------- ungoverned

{
    my $r = $g->request(GET => '/plain/');
    is($r->{status}, 200, 'a location without foxgov_call is not governed');
    ok(!exists $r->{headers}{'foxgov-execution-id'},
       'ungoverned: no FoxGov headers');
}

is($g->stop, 0, 'nginx stops cleanly');
my ($ok, @bad) = $g->nginx->error_log_ok();
ok($ok, 'no alerts in error.log') or diag(join "\n", @bad);

# nginx's own debug lines (this is a --with-debug build logging at debug,
# for the evidence lines) print every request header; what is checked is
# every line the module writes and every line above debug level.
my ($keep, @lines) = (1);
for (split /\n/, $g->nginx->read_file('error.log')) {
    # a line of its own, or the continuation of a multi-line entry
    $keep = !/\[debug\]/ || /foxgov/ if m{^\d{4}/\d\d/\d\d };
    push @lines, $_ if $keep;
}
my $log = join "\n", @lines;
unlike($log, qr/\Q$tok\E/, 'the token never reaches a log line');
unlike($log, qr/sk-openai-test|snow-test-token/,
       'no credential reaches a log line');

done_testing();
