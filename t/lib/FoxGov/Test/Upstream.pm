package FoxGov::Test::Upstream;

# Mock model providers (OpenAI, Azure OpenAI, Anthropic) and tool APIs
# (ServiceNow Table API, Slack Web API) on one loopback port, shaped like
# the real APIs: status codes, JSON bodies, headers, SSE streams.  Every
# request received is logged (one JSON line, before the answer) so a test
# can look at what the gateway forwarded.  The POD at the end says how to
# use it.

use strict;
use warnings;

use Digest::SHA qw(sha256 sha256_hex);
use Errno qw(EINTR EAGAIN);
use Fcntl qw(:DEFAULT :flock SEEK_SET);
use File::Basename qw(dirname);
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use POSIX qw(WNOHANG strftime);
use Scalar::Util qw(weaken);
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(sleep time);

my %LIVE;    # pid => object, stopped by END

my $JSON = JSON::PP->new->utf8->canonical;

our %DEFAULT_KEYS = (
    openai       => 'sk-openai-test',
    azure_openai => 'azure-test-key',
    anthropic    => 'sk-ant-test',
    servicenow   => 'snow-test-token',
    slack        => 'xoxb-slack-test',
);

# The incidents the ServiceNow mock starts with.
our @SEED_INCIDENTS = (
    {
        sys_id            => '9d385017c611228701d22104cc95c371',
        number            => 'INC0010001',
        short_description => 'Email server is down',
        description       => 'Users in the Berlin office cannot send or '
                           . 'receive email since 09:12.',
        category          => 'network',
        priority          => '1',
        impact            => '1',
        urgency           => '1',
        state             => '2',
        assignment_group  => 'Network Operations',
        assigned_to       => '',
        caller_id         => 'abel.tuter',
        opened_at         => '2026-11-22 09:15:00',
        sys_created_on    => '2026-11-22 09:15:00',
        sys_updated_on    => '2026-11-22 09:15:00',
        sys_updated_by    => 'abel.tuter',
        sys_mod_count     => '0',
        active            => 'true',
    },
    {
        sys_id            => 'e8caedcbc0a80164017df472f39eaed1',
        number            => 'INC0010002',
        short_description => 'Cannot log in to the VPN',
        description       => 'The VPN client says "authentication failed" '
                           . 'after the password change.',
        category          => 'software',
        priority          => '3',
        impact            => '2',
        urgency           => '2',
        state             => '1',
        assignment_group  => 'Service Desk',
        assigned_to       => '',
        caller_id         => 'beth.anglin',
        opened_at         => '2026-11-22 09:40:00',
        sys_created_on    => '2026-11-22 09:40:00',
        sys_updated_on    => '2026-11-22 09:40:00',
        sys_updated_by    => 'beth.anglin',
        sys_mod_count     => '0',
        active            => 'true',
    },
);

###########################################################################
# The test's side

sub new {
    my ($class, %opts) = @_;

    die "FoxGov::Test::Upstream->new: port is required\n"
        unless $opts{port};
    die "FoxGov::Test::Upstream->new: log is required\n" unless $opts{log};

    my %keys = (%DEFAULT_KEYS, %{ $opts{keys} || {} });

    my $self = bless {
        port     => $opts{port},
        host     => $opts{host} || '127.0.0.1',
        log      => $opts{log},
        state    => $opts{state}
                    || dirname($opts{log}) . "/upstream-$opts{port}.state",
        keys     => \%keys,
        keep_state => $opts{keep_state} ? 1 : 0,
        timeout  => $opts{timeout} || 10,
        max_conn_seconds => $opts{max_conn_seconds} || 120,
        pid      => undef,
        owner    => $$,
    }, $class;

    return $self;
}

sub port { return $_[0]{port} }
sub base_url { return "http://$_[0]{host}:$_[0]{port}" }
sub credentials { return { %{ $_[0]{keys} } } }
sub log_path { return $_[0]{log} }
sub pid { return $_[0]{pid} }

sub start {
    my ($self) = @_;

    die "upstream mock already running\n" if $self->{pid};

    # Bound here so a taken port fails the test at once, in its process.
    my $listen = IO::Socket::INET->new(
        LocalAddr => $self->{host},
        LocalPort => $self->{port},
        Proto     => 'tcp',
        Listen    => 128,
        ReuseAddr => 1,
    ) or die "upstream mock: cannot listen on $self->{host}:$self->{port}: "
        . "$!\n";

    # Touch the log and seed the state before anyone can ask.
    sysopen(my $lf, $self->{log}, O_WRONLY | O_CREAT | O_APPEND, 0644)
        or die "upstream mock: $self->{log}: $!\n";
    close $lf;
    $self->_seed_state();

    my $parent = $$;
    my $pid = fork();
    die "fork: $!\n" unless defined $pid;

    if ($pid == 0) {
        POSIX::setpgid(0, 0);
        %LIVE = ();
        my $ok = eval { $self->_serve($listen, $parent); 1 };
        print STDERR "upstream mock: $@" unless $ok;
        POSIX::_exit($ok ? 0 : 1);
    }

    close $listen;
    POSIX::setpgid($pid, $pid);    # also from here: no race with kill -pid

    $self->{pid} = $pid;
    $LIVE{$pid} = $self;
    weaken($LIVE{$pid});

    my $deadline = time() + $self->{timeout};
    while (time() < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $LIVE{$pid};
            $self->{pid} = undef;
            die "upstream mock exited while starting (status $?)\n";
        }
        my $s = IO::Socket::INET->new(PeerAddr => $self->{host},
            PeerPort => $self->{port}, Proto => 'tcp', Timeout => 1);
        if ($s) {
            print {$s} "GET /mock/health HTTP/1.0\r\n\r\n";
            my $sel = IO::Select->new($s);
            my $resp = '';
            while ($sel->can_read(1)) {
                my $n = sysread($s, my $buf, 4096);
                last unless $n;
                $resp .= $buf;
            }
            close $s;
            return $self if $resp =~ m{^HTTP/1\.1 200 };
        }
        sleep 0.02;
    }

    $self->stop();
    die "upstream mock did not answer on port $self->{port} in "
        . "$self->{timeout}s\n";
}

sub is_running { return defined $_[0]{pid} }

sub stop {
    my ($self) = @_;

    my $pid = $self->{pid} or return;
    return if $$ != $self->{owner};    # a forked copy owns nothing

    kill 'TERM', -$pid;
    my $deadline = time() + 2;
    my $gone = 0;
    while (time() < $deadline) {
        if (waitpid($pid, WNOHANG) != 0) { $gone = 1; last }
        sleep 0.01;
    }
    kill 'KILL', -$pid;    # connection children go with the group
    waitpid($pid, 0) unless $gone;

    # Until no process of the group is left (init reaps the orphans).
    $deadline = time() + 2;
    while (kill(0, -$pid) && time() < $deadline) {
        kill 'KILL', -$pid;
        sleep 0.01;
    }

    delete $LIVE{$pid};
    $self->{pid} = undef;
    return;
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->stop() if $self->{pid};
}

END {
    local $?;
    for my $u (grep { defined } values %LIVE) {
        $u->stop();
    }
}

# Every request logged so far, oldest first.
sub requests {
    my ($self) = @_;

    open my $fh, '<:raw', $self->{log} or return ();
    flock($fh, LOCK_SH);
    my @r;
    while (my $line = <$fh>) {
        next unless $line =~ /\S/;
        push @r, $JSON->decode($line);
    }
    close $fh;

    return @r;
}

sub last_request {
    my ($self) = @_;
    my @r = $self->requests();
    return $r[-1];
}

# Wait until at least $n requests are logged (or $timeout seconds); returns
# them.
sub wait_requests {
    my ($self, $n, $timeout) = @_;
    my $deadline = time() + ($timeout // 5);
    while (1) {
        my @r = $self->requests();
        return @r if @r >= $n || time() >= $deadline;
        sleep 0.02;
    }
}

sub clear_log {
    my ($self) = @_;
    open my $fh, '+<', $self->{log} or return $self;
    flock($fh, LOCK_EX);
    truncate($fh, 0);
    close $fh;
    return $self;
}

# The ServiceNow incidents as they are now (sys_id => record).
sub incidents {
    my ($self) = @_;
    my $st = $self->_state_read();
    return $st->{incidents};
}

# Put the ServiceNow and Slack state back as it was at start.
sub reset_state {
    my ($self) = @_;
    $self->_seed_state();
    return $self;
}

###########################################################################
# State shared by the forked children: one JSON file under flock.

sub _seed_state {
    my ($self) = @_;
    # keep_state: a state file left by an earlier run is carried on (the
    # quickstart's ServiceNow keeps its incidents and numbering)
    return if $self->{keep_state} && -s $self->{state};
    my %inc = map { $_->{sys_id} => { %$_ } } @SEED_INCIDENTS;
    my $st = { incidents => \%inc, next_number => 10003, slack_seq => 0 };
    sysopen(my $fh, $self->{state}, O_RDWR | O_CREAT, 0644)
        or die "upstream mock: $self->{state}: $!\n";
    flock($fh, LOCK_EX);
    truncate($fh, 0);
    syswrite($fh, $JSON->encode($st));
    close $fh;
}

sub _state_read {
    my ($self) = @_;
    open my $fh, '<:raw', $self->{state} or die "$self->{state}: $!\n";
    flock($fh, LOCK_SH);
    local $/;
    my $t = <$fh>;
    close $fh;
    return $JSON->decode($t);
}

# Run $code->($state) under an exclusive lock and write the state back.
sub _state_update {
    my ($self, $code) = @_;
    sysopen(my $fh, $self->{state}, O_RDWR) or die "$self->{state}: $!\n";
    flock($fh, LOCK_EX);
    local $/;
    my $t = <$fh>;
    my $st = $JSON->decode($t);
    my @ret = $code->($st);
    seek($fh, 0, SEEK_SET);
    truncate($fh, 0);
    syswrite($fh, $JSON->encode($st));
    close $fh;
    return wantarray ? @ret : $ret[0];
}

###########################################################################
# The server: one process accepting, one child per connection.

sub _serve {
    my ($self, $listen, $parent) = @_;

    my $stop = 0;
    $SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
    $SIG{PIPE} = 'IGNORE';
    $SIG{CHLD} = 'DEFAULT';

    my $sel = IO::Select->new($listen);

    while (!$stop) {
        1 while waitpid(-1, WNOHANG) > 0;

        # The test process died without stopping us: go too.
        last if getppid() != $parent;

        next unless $sel->can_read(0.2);
        my $c = $listen->accept() or next;

        my $pid = fork();
        if (!defined $pid) {
            close $c;
            next;
        }
        if ($pid == 0) {
            close $listen;
            $SIG{TERM} = $SIG{INT} = 'DEFAULT';
            alarm($self->{max_conn_seconds});
            eval { $self->_connection($c); 1 };
            close $c;
            POSIX::_exit(0);
        }
        close $c;
    }

    close $listen;
    # Our group: the connection children (and us, but TERM only sets
    # $stop here).  Reap them, for a second at most.
    kill 'TERM', -$$;
    my $deadline = time() + 1;
    while (time() < $deadline) {
        my $w = waitpid(-1, WNOHANG);
        last if $w < 0;    # no children left
        sleep 0.01 if $w == 0;
    }
}

# One connection: requests until close (HTTP/1.0, Connection: close, an
# abort, or 10 s idle on a keep-alive connection).
sub _connection {
    my ($self, $c) = @_;

    binmode $c;
    $c->autoflush(1);
    my $conn = { sock => $c, buf => '', sel => IO::Select->new($c) };

    while (1) {
        my $req = $self->_read_request($conn) or return;
        if (!ref $req) {    # a framing error
            $self->_write_all($conn, "HTTP/1.1 400 Bad Request\r\n"
                . "Content-Type: text/plain\r\nContent-Length: "
                . length($req) . "\r\nConnection: close\r\n\r\n$req");
            return;
        }

        # every request but the readiness probe
        $self->_log($req) unless $req->{path} eq '/mock/health';

        my $keep = $req->{http_version} eq 'HTTP/1.1'
            && ($req->{headers}{connection} // '') !~ /\bclose\b/i;
        $conn->{keep} = $keep;
        $conn->{v11} = $req->{http_version} eq 'HTTP/1.1';

        my $h = $req->{headers};
        if (my $ms = $h->{'x-mock-delay-ms'}) {
            sleep($ms / 1000) if $ms =~ /^\d+$/;
        }

        my $ok = $self->_dispatch($conn, $req);
        return unless $ok && $conn->{keep};
    }
}

# Read until $pred says the buffer holds enough; undef on EOF/timeout.
sub _fill {
    my ($self, $conn, $pred, $timeout) = @_;
    my $deadline = time() + $timeout;
    until ($pred->()) {
        my $left = $deadline - time();
        return 0 if $left <= 0;
        return 0 unless $conn->{sel}->can_read($left);
        my $n = sysread($conn->{sock}, my $b, 65536);
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN;
            return 0;
        }
        return 0 if $n == 0;
        $conn->{buf} .= $b;
    }
    return 1;
}

# A request as a hashref; a string (the reason) when it is malformed;
# undef when the connection ended first.
sub _read_request {
    my ($self, $conn) = @_;

    $self->_fill($conn, sub {
        $conn->{buf} =~ /\r?\n\r?\n/ || length($conn->{buf}) > 65536
    }, 10) or return undef;

    return "request header too large\n"
        unless $conn->{buf} =~ s/\A(.*?)\r?\n\r?\n//s;
    my $head = $1;
    $head =~ s/\A(?:\r?\n)+//;

    my ($line, @lines) = split /\r?\n/, $head;
    return "bad request line\n" unless defined $line
        && $line =~ m{^([A-Z]+) (\S+) (HTTP/1\.[01])$};
    my ($method, $target, $version) = ($1, $2, $3);

    my (%headers, @order);
    for my $l (@lines) {
        return "bad header line\n" unless $l =~ /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;
        my ($n, $v) = (lc $1, $2);
        if (exists $headers{$n}) {
            $headers{$n} .= ", $v";
        } else {
            $headers{$n} = $v;
            push @order, $n;
        }
    }

    my ($path, $query) = split /\?/, $target, 2;

    # Expect: 100-continue, as curl sends for big bodies
    if ($version eq 'HTTP/1.1'
        && ($headers{expect} // '') =~ /^100-continue$/i)
    {
        $self->_write_all($conn, "HTTP/1.1 100 Continue\r\n\r\n");
    }

    my $body = '';
    my $te = $headers{'transfer-encoding'};
    if (defined $te && $te =~ /\bchunked\s*$/i) {
        while (1) {
            $self->_fill($conn, sub { $conn->{buf} =~ /\r?\n/ }, 10)
                or return undef;
            $conn->{buf} =~ s/\A([0-9a-fA-F]+)[^\r\n]*\r?\n//
                or return "bad chunk size\n";
            my $size = hex $1;
            if ($size == 0) {
                # trailers, up to the empty line
                while (1) {
                    $self->_fill($conn, sub { $conn->{buf} =~ /\r?\n/ }, 10)
                        or return undef;
                    $conn->{buf} =~ s/\A([^\r\n]*)\r?\n//;
                    last if $1 eq '';
                }
                last;
            }
            $self->_fill($conn, sub { length($conn->{buf}) >= $size + 2 },
                30) or return undef;
            $body .= substr($conn->{buf}, 0, $size, '');
            $conn->{buf} =~ s/\A\r?\n// or return "bad chunk end\n";
        }
    } elsif (defined $headers{'content-length'}) {
        my $len = $headers{'content-length'};
        return "bad content-length\n" unless $len =~ /^\d+$/;
        $self->_fill($conn, sub { length($conn->{buf}) >= $len }, 30)
            or return undef;
        $body = substr($conn->{buf}, 0, $len, '');
    }

    return {
        method       => $method,
        path         => $path,
        query        => $query,
        http_version => $version,
        headers      => \%headers,
        header_order => \@order,
        body         => $body,
        body_sha256  => sha256_hex($body),
        time         => time(),
    };
}

sub _log {
    my ($self, $req) = @_;
    my $line = $JSON->encode($req) . "\n";
    sysopen(my $fh, $self->{log}, O_WRONLY | O_CREAT | O_APPEND, 0644)
        or die "$self->{log}: $!";
    flock($fh, LOCK_EX);
    syswrite($fh, $line);
    close $fh;
}

sub _write_all {
    my ($self, $conn, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($conn->{sock}, $data, length($data) - $off, $off);
        if (!defined $n) {
            next if $! == EINTR || $! == EAGAIN;
            return 0;
        }
        $off += $n;
    }
    return 1;
}

###########################################################################
# Answers

my %REASON = (
    200 => 'OK', 201 => 'Created', 204 => 'No Content', 400 => 'Bad Request',
    401 => 'Unauthorized', 403 => 'Forbidden', 404 => 'Not Found',
    405 => 'Method Not Allowed', 408 => 'Request Timeout',
    409 => 'Conflict', 413 => 'Payload Too Large',
    422 => 'Unprocessable Entity', 429 => 'Too Many Requests',
    500 => 'Internal Server Error', 502 => 'Bad Gateway',
    503 => 'Service Unavailable', 504 => 'Gateway Timeout',
    529 => 'Overloaded',
);

sub _head {
    my ($self, $conn, $status, $headers, %o) = @_;
    my $reason = $REASON{$status} // 'Unknown';
    my $h = "HTTP/1.1 $status $reason\r\n";
    $h .= "Date: " . strftime('%a, %d %b %Y %H:%M:%S GMT', gmtime) . "\r\n";
    for (my $i = 0; $i < @$headers; $i += 2) {
        $h .= "$headers->[$i]: $headers->[$i + 1]\r\n";
    }
    if (defined $o{length}) {
        $h .= "Content-Length: $o{length}\r\n";
    } elsif ($conn->{v11} && $conn->{keep}) {
        $h .= "Transfer-Encoding: chunked\r\n";
        $conn->{chunked} = 1;
    } else {
        $conn->{keep} = 0;
        $conn->{chunked} = 0;
    }
    $h .= "Connection: " . ($conn->{keep} ? 'keep-alive' : 'close') . "\r\n";
    return "$h\r\n";
}

# A complete answer with Content-Length.  X-Mock-Abort-After: n sends the
# head and n bytes of the body, then closes.
sub _respond {
    my ($self, $conn, $req, $status, $ctype, $body, @headers) = @_;

    my $head = $self->_head($conn, $status,
        [ 'Content-Type' => $ctype, @headers ], length => length $body);

    my $abort = $req->{headers}{'x-mock-abort-after'};
    if (defined $abort && $abort =~ /^\d+$/) {
        $self->_write_all($conn, $head . substr($body, 0, $abort));
        $self->_abort($conn, $req);
        return 0;
    }

    return $self->_write_all($conn, $head . $body);
}

sub _json {
    my ($self, $conn, $req, $status, $obj, @headers) = @_;
    return $self->_respond($conn, $req, $status, 'application/json',
        $JSON->encode($obj), @headers);
}

sub _abort {
    my ($self, $conn, $req) = @_;
    if (($req->{headers}{'x-mock-abort-mode'} // '') =~ /^reset$/i) {
        # Let the peer read what was sent, then RST rather than FIN.
        sleep 0.05;
        setsockopt($conn->{sock}, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
    }
    close $conn->{sock};
    $conn->{keep} = 0;
}

# An SSE stream: @$events are the event texts (each ending in "\n\n").
# X-Mock-Chunk-Delay-Ms sleeps before each event; X-Mock-Abort-After: n
# closes after n events, without the terminating chunk.
sub _stream {
    my ($self, $conn, $req, $status, $events, @headers) = @_;

    my $h = $req->{headers};
    my $delay = ($h->{'x-mock-chunk-delay-ms'} // '') =~ /^(\d+)$/
        ? $1 / 1000 : 0;
    my $abort = ($h->{'x-mock-abort-after'} // '') =~ /^(\d+)$/
        ? $1 : undef;

    $self->_write_all($conn, $self->_head($conn, $status,
        [ 'Content-Type' => 'text/event-stream; charset=utf-8',
          'Cache-Control' => 'no-cache', @headers ])) or return 0;

    my $sent = 0;
    for my $ev (@$events) {
        if (defined $abort && $sent >= $abort) {
            $self->_abort($conn, $req);
            return 0;
        }
        sleep $delay if $delay;
        my $data = $conn->{chunked}
            ? sprintf("%x\r\n%s\r\n", length $ev, $ev) : $ev;
        $self->_write_all($conn, $data) or return 0;
        $sent++;
    }

    if (defined $abort && $sent >= $abort) {
        $self->_abort($conn, $req);
        return 0;
    }

    if ($conn->{chunked}) {
        $self->_write_all($conn, "0\r\n\r\n") or return 0;
    }
    return 1;
}

sub _sse {
    my ($data, $event) = @_;
    my $d = ref $data ? $JSON->encode($data) : $data;
    return (defined $event ? "event: $event\n" : '') . "data: $d\n\n";
}

sub _hex { my ($n) = @_; return join '', map { sprintf '%02x', int rand 256 } 1 .. $n }

sub _b62 {
    my ($n) = @_;
    my @c = ('A' .. 'Z', 'a' .. 'z', '0' .. '9');
    return join '', map { $c[rand @c] } 1 .. $n;
}

###########################################################################
# Routing

sub _dispatch {
    my ($self, $conn, $req) = @_;

    my $p = $req->{path};

    if ($p eq '/mock/health') {
        return $self->_respond($conn, $req, 200, 'text/plain', 'ok');
    }
    if ($p eq '/mock/echo') {
        my %e = map { $_ => $req->{$_} }
            qw(method path query http_version headers body body_sha256);
        return $self->_json($conn, $req, 200, \%e);
    }
    if ($p =~ m{^/v1/messages(?:/|$)}) {
        return $self->_anthropic($conn, $req);
    }
    if ($p =~ m{^/openai/}) {
        return $self->_azure($conn, $req);
    }
    if ($p =~ m{^/api/now/}) {
        return $self->_servicenow($conn, $req);
    }
    if ($p =~ m{^/api/[A-Za-z]+\.[A-Za-z.]+$}) {
        return $self->_slack($conn, $req);
    }
    return $self->_openai($conn, $req);
}

# X-Mock-Status: a code other than 200 is answered with $err->($code).
sub _mock_status {
    my ($self, $req) = @_;
    my $s = $req->{headers}{'x-mock-status'};
    return undef unless defined $s && $s =~ /^([1-5]\d\d)$/ && $s != 200;
    return $1;
}

sub _decode_body {
    my ($req) = @_;
    my $b = eval { $JSON->decode($req->{body}) };
    return ref $b eq 'HASH' ? $b : undef;
}

# Text of a message's content: a string, or an array of parts.
sub _text {
    my ($c) = @_;
    return '' unless defined $c;
    return "$c" unless ref $c;
    if (ref $c eq 'ARRAY') {
        my @t;
        for my $part (@$c) {
            if (ref $part eq 'HASH') {
                push @t, defined $part->{text} ? _text($part->{text})
                                               : _text($part->{content});
            } elsif (!ref $part) {
                push @t, "$part";
            }
        }
        return join ' ', @t;
    }
    if (ref $c eq 'HASH') {
        return $c->{text} // '';
    }
    return '';
}

sub _words {
    my ($t) = @_;
    my @w = split ' ', $t // '';
    return scalar @w;
}

# The deterministic answer to a conversation: "Summary: " and the first 40
# characters of the last user message, whitespace collapsed.
sub _answer {
    my ($last_user) = @_;
    my $s = substr($last_user // '', 0, 40);
    $s =~ s/\s+/ /g;
    $s =~ s/^ //;
    $s =~ s/ $//;
    $s = '(empty)' unless length $s;
    return "Summary: $s";
}

# Pieces of the answer for a stream: its words, each after the first with
# its leading space, so they concatenate to the answer.
sub _pieces {
    my ($answer) = @_;
    my @w = split / /, $answer;
    return ($w[0], map { " $_" } @w[1 .. $#w]);
}

sub _pad {
    my ($answer, $size, $base_len) = @_;
    return $answer unless defined $size && $size =~ /^\d+$/;
    my $n = $size - $base_len - 1;
    return $answer if $n <= 0;
    return $answer . ' ' . ('x' x $n);
}

###########################################################################
# OpenAI

my %OPENAI_MODEL = (
    'gpt-4o'      => 'gpt-4o-2024-08-06',
    'gpt-4o-mini' => 'gpt-4o-mini-2024-07-18',
);

sub _openai_error {
    my ($message, $type, $param, $code) = @_;
    return { error => { message => $message, type => $type,
                        param => $param, code => $code } };
}

sub _mask_key {
    my ($k) = @_;
    return '*' x length $k if length $k <= 8;
    return substr($k, 0, 3) . ('*' x (length($k) - 7)) . substr($k, -4);
}

sub _openai_status_body {
    my ($code) = @_;
    my %m = (
        400 => ['Invalid request (mock).', 'invalid_request_error', undef],
        401 => ['Incorrect API key provided (mock).',
                'invalid_request_error', 'invalid_api_key'],
        403 => ['You are not allowed to sample from this model',
                'invalid_request_error', undef],
        404 => ['The model does not exist or you do not have access to it.',
                'invalid_request_error', 'model_not_found'],
        429 => ['Rate limit reached for requests (mock).', 'requests',
                'rate_limit_exceeded'],
        500 => ['The server had an error while processing your request. '
                . 'Sorry about that!', 'server_error', undef],
        503 => ['The engine is currently overloaded, please try again '
                . 'later', 'server_error', undef],
    );
    my $e = $m{$code} // ["Mock status $code.", 'server_error', undef];
    return _openai_error($e->[0], $e->[1], undef, $e->[2]);
}

sub _openai_headers {
    my ($self, $azure) = @_;
    my $rid = 'req_' . _hex(16);
    my @h = ('x-request-id' => $rid, 'openai-version' => '2020-10-01',
             'openai-processing-ms' => 42);
    push @h, 'apim-request-id' => join('-', _hex(4), _hex(2), _hex(2),
        _hex(2), _hex(6)) if $azure;
    push @h, 'x-ratelimit-limit-requests' => 10000,
             'x-ratelimit-remaining-requests' => 9999;
    return @h;
}

sub _openai {
    my ($self, $conn, $req) = @_;

    my $auth = $req->{headers}{authorization};
    my $key = defined $auth && $auth =~ /^Bearer\s+(\S.*)$/i ? $1 : undef;

    if (!defined $key) {
        return $self->_json($conn, $req, 401, _openai_error(
            "You didn't provide an API key. You need to provide your API "
            . "key in an Authorization header using Bearer auth (i.e. "
            . "Authorization: Bearer YOUR_KEY), or as the password field "
            . "(with blank username) if you're accessing the API from your "
            . "browser and are prompted for a username and password. You "
            . "can obtain an API key from "
            . "https://platform.openai.com/account/api-keys.",
            'invalid_request_error', undef, 'invalid_api_key'),
            $self->_openai_headers());
    }
    if ($key ne $self->{keys}{openai}) {
        return $self->_json($conn, $req, 401, _openai_error(
            'Incorrect API key provided: ' . _mask_key($key) . '. You can '
            . 'find your API key at '
            . 'https://platform.openai.com/account/api-keys.',
            'invalid_request_error', undef, 'invalid_api_key'),
            $self->_openai_headers());
    }

    return $self->_openai_api($conn, $req, $req->{path}, undef);
}

# The OpenAI API behind the credential check, for OpenAI ($deployment
# undef) and Azure (the deployment names the model).
sub _openai_api {
    my ($self, $conn, $req, $op, $deployment) = @_;
    my $azure = defined $deployment;
    my @hdr = $self->_openai_headers($azure);

    if (defined(my $st = $self->_mock_status($req))) {
        my $body = $azure
            ? { error => { code => "$st", message => "Mock status $st." } }
            : _openai_status_body($st);
        push @hdr, 'Retry-After' => 1 if $st == 429;
        return $self->_json($conn, $req, $st, $body, @hdr);
    }

    my %routes = (
        '/v1/chat/completions' => \&_openai_chat,
        '/v1/responses'        => \&_openai_responses,
        '/v1/embeddings'       => \&_openai_embeddings,
        '/chat/completions'    => \&_openai_chat,        # Azure
        '/embeddings'          => \&_openai_embeddings,  # Azure
    );
    my $fn = $routes{$op};
    if (!$fn || ($azure xor $op !~ m{^/v1/})) {
        my $e = $azure
            ? { error => { code => '404', message => 'Resource not found' } }
            : _openai_error("Invalid URL ($req->{method} $req->{path})",
                'invalid_request_error', undef, undef);
        return $self->_json($conn, $req, 404, $e, @hdr);
    }
    if ($req->{method} ne 'POST') {
        return $self->_json($conn, $req, 405, _openai_error(
            "Invalid method for URL ($req->{method} $req->{path})",
            'invalid_request_error', undef, undef), @hdr);
    }

    my $b = _decode_body($req);
    if (!$b) {
        return $self->_json($conn, $req, 400, _openai_error(
            "We could not parse the JSON body of your request. (HINT: This "
            . "likely means you aren't using your HTTP library correctly. "
            . "The OpenAI API expects a JSON payload, but what was sent was "
            . "not valid JSON. If you have trouble figuring out how to fix "
            . "this, please contact us through our help center at "
            . "help.openai.com.)", 'invalid_request_error', undef, undef),
            @hdr);
    }

    my $model = $azure ? $deployment : $b->{model};
    if (!defined $model || ref $model || $model eq '') {
        return $self->_json($conn, $req, 400, _openai_error(
            'you must provide a model parameter', 'invalid_request_error',
            undef, undef), @hdr);
    }
    my $rmodel = $azure ? $deployment : ($OPENAI_MODEL{$model} // $model);

    return $fn->($self, $conn, $req, $b, $rmodel, $azure, \@hdr);
}

sub _chat_tokens {
    my ($msgs) = @_;
    my ($words, $last_user) = (0, '');
    for my $m (@$msgs) {
        next unless ref $m eq 'HASH';
        my $t = _text($m->{content});
        $words += _words($t);
        $last_user = $t if ($m->{role} // '') eq 'user';
    }
    return ($words + 7, $last_user);
}

# Structured output (response_format json_schema) named "incident_triage",
# as the quickstart's triage agent (demo/itsm-triage) asks for it.
sub _is_triage_request {
    my ($b) = @_;
    my $rf = $b->{response_format};
    return ref $rf eq 'HASH' && ($rf->{type} // '') eq 'json_schema'
        && ref $rf->{json_schema} eq 'HASH'
        && ($rf->{json_schema}{name} // '') eq 'incident_triage';
}

# What the ServiceNow out-of-box categories and a service desk's groups
# would make of an incident's words: the first rule whose pattern the text
# matches decides.
my @TRIAGE_RULES = (
    [ qr/\b(?:e-?mail|outlook|exchange|smtp|mailbox)\b/i,
      'software', 'Messaging' ],
    [ qr/\b(?:vpn|network|wi-?fi|dns|router|switch|firewall)\b/i,
      'network', 'Network Operations' ],
    [ qr/\b(?:database|sql|postgres\w*|oracle|db)\b/i,
      'database', 'Database Administration' ],
    [ qr/\b(?:laptop|printer|monitor|keyboard|disk|hardware)\b/i,
      'hardware', 'Hardware Support' ],
);

# The deterministic triage of an incident: a JSON object with summary,
# category, priority, assignment_group and work_note, from the words of
# the last user message.  Priority as ServiceNow derives it from impact
# and urgency: an outage (urgency) of many users (impact) is 2 - High,
# one of the two 3 - Moderate, neither 4 - Low.
sub _triage_answer {
    my ($text, $model) = @_;

    my ($category, $group, $why) = ('inquiry', 'Service Desk', undef);
    for my $r (@TRIAGE_RULES) {
        if ($text =~ $r->[0]) {
            ($category, $group, $why) = ($r->[1], $r->[2], lc $&);
            last;
        }
    }
    my $urgent = $text =~ /\b(?:down|outage|cannot|can't|not working|fail\w*)\b/i;
    my $broad = $text =~ /\b(?:all|every\w*|office|team|site|users)\b/i;
    my $priority = $urgent && $broad ? '2' : $urgent || $broad ? '3' : '4';

    my ($short) = $text =~ /^Short description:\s*(.+)$/mi;
    $short //= (split /\n/, $text)[0] // '';
    $short =~ s/\s+/ /g;
    $short = substr($short, 0, 120);

    my %pname = (2 => 'High', 3 => 'Moderate', 4 => 'Low');
    return $JSON->encode({
        summary          => $short,
        category         => $category,
        priority         => $priority,
        assignment_group => $group,
        work_note        => "Triaged by $model: category $category, "
            . "priority $priority - $pname{$priority}, assigned to $group"
            . (defined $why ? " (the report mentions \"$why\")" : '')
            . '.',
    });
}

my @FILTER_OK = map { $_ => { filtered => JSON::PP::false, severity => 'safe' } }
    qw(hate self_harm sexual violence);

sub _openai_chat {
    my ($self, $conn, $req, $b, $model, $azure, $hdr) = @_;

    my $msgs = $b->{messages};
    if (ref $msgs ne 'ARRAY') {
        return $self->_json($conn, $req, 400, _openai_error(
            "Missing required parameter: 'messages'.",
            'invalid_request_error', 'messages',
            'missing_required_parameter'), @$hdr);
    }

    my ($ptok, $last) = _chat_tokens($msgs);
    my $answer = _is_triage_request($b) ? _triage_answer($last, $model)
                                        : _answer($last);
    my $id = 'chatcmpl-' . _b62(29);
    my $created = int time();
    my $fp = 'fp_' . substr(sha256_hex($model), 0, 10);

    if ($b->{stream}) {
        my $usage = ref $b->{stream_options} eq 'HASH'
            && $b->{stream_options}{include_usage};
        my @pieces = _pieces($answer);
        my $ctok = scalar @pieces;
        my $chunk = sub {
            my ($choices, %x) = @_;
            return {
                id => $id, object => 'chat.completion.chunk',
                created => $created, model => $model,
                system_fingerprint => $fp, choices => $choices,
                ($usage ? (usage => undef) : ()), %x,
            };
        };
        my $choice = sub {
            my ($delta, $finish) = @_;
            return [ { index => 0, delta => $delta, logprobs => undef,
                       finish_reason => $finish,
                       ($azure ? (content_filter_results =>
                           $finish ? {} : { @FILTER_OK }) : ()) } ];
        };
        my @ev;
        if ($azure) {
            push @ev, _sse({ id => '', object => '', created => 0,
                model => '', choices => [],
                prompt_filter_results => [ { prompt_index => 0,
                    content_filter_results => { @FILTER_OK } } ] });
        }
        push @ev, _sse($chunk->($choice->({ role => 'assistant',
            content => '', refusal => undef }, undef)));
        push @ev, _sse($chunk->($choice->({ content => $_ }, undef)))
            for @pieces;
        push @ev, _sse($chunk->($choice->({}, 'stop')));
        if ($usage) {
            push @ev, _sse($chunk->([], usage => {
                prompt_tokens => $ptok, completion_tokens => $ctok,
                total_tokens => $ptok + $ctok,
                prompt_tokens_details => { cached_tokens => 0 },
                completion_tokens_details => { reasoning_tokens => 0 } }));
        }
        push @ev, "data: [DONE]\n\n";
        return $self->_stream($conn, $req, 200, \@ev, @$hdr);
    }

    my $build = sub {
        my ($content) = @_;
        my $ctok = _words($content);
        return {
            id => $id, object => 'chat.completion', created => $created,
            model => $model,
            choices => [ { index => 0,
                message => { role => 'assistant', content => $content,
                             refusal => undef },
                logprobs => undef, finish_reason => 'stop',
                ($azure ? (content_filter_results => { @FILTER_OK }) : ()),
            } ],
            usage => { prompt_tokens => $ptok, completion_tokens => $ctok,
                       total_tokens => $ptok + $ctok,
                       prompt_tokens_details => { cached_tokens => 0 },
                       completion_tokens_details =>
                           { reasoning_tokens => 0 } },
            system_fingerprint => $fp,
            ($azure ? (prompt_filter_results => [ { prompt_index => 0,
                content_filter_results => { @FILTER_OK } } ]) : ()),
        };
    };

    my $obj = $build->($answer);
    if (defined(my $size = $req->{headers}{'x-mock-body-size'})) {
        my $base = length $JSON->encode($obj);
        $obj = $build->(_pad($answer, $size, $base));
    }
    return $self->_json($conn, $req, 200, $obj, @$hdr);
}

sub _responses_input {
    my ($b) = @_;
    my ($words, $last) = (0, '');
    my $in = $b->{input};
    if (defined $b->{instructions} && !ref $b->{instructions}) {
        $words += _words($b->{instructions});
    }
    if (defined $in && !ref $in) {
        $words += _words($in);
        $last = $in;
    } elsif (ref $in eq 'ARRAY') {
        for my $item (@$in) {
            next unless ref $item eq 'HASH';
            my $t = _text($item->{content});
            $words += _words($t);
            $last = $t if ($item->{role} // 'user') eq 'user';
        }
    }
    return ($words + 7, $last);
}

sub _openai_responses {
    my ($self, $conn, $req, $b, $model, $azure, $hdr) = @_;

    if (!defined $b->{input}) {
        return $self->_json($conn, $req, 400, _openai_error(
            "Missing required parameter: 'input'.", 'invalid_request_error',
            'input', 'missing_required_parameter'), @$hdr);
    }

    my ($itok, $last) = _responses_input($b);
    my $answer = _answer($last);
    my @pieces = _pieces($answer);
    my $otok = scalar @pieces;
    my $id = 'resp_' . _hex(24);
    my $mid = 'msg_' . _hex(24);
    my $created = int time();

    my $resp = sub {
        my ($status, $text) = @_;
        my $done = $status eq 'completed';
        return {
            id => $id, object => 'response', created_at => $created,
            status => $status, error => undef, incomplete_details => undef,
            instructions => $b->{instructions}, model => $model,
            output => $done ? [ {
                type => 'message', id => $mid, status => 'completed',
                role => 'assistant',
                content => [ { type => 'output_text', text => $text,
                               annotations => [] } ] } ] : [],
            parallel_tool_calls => JSON::PP::true,
            previous_response_id => undef,
            store => JSON::PP::true, temperature => 1, top_p => 1,
            text => { format => { type => 'text' } },
            tool_choice => 'auto', tools => [], truncation => 'disabled',
            metadata => {},
            usage => $done ? {
                input_tokens => $itok,
                input_tokens_details => { cached_tokens => 0 },
                output_tokens => $otok,
                output_tokens_details => { reasoning_tokens => 0 },
                total_tokens => $itok + $otok } : undef,
        };
    };

    if ($b->{stream}) {
        my $seq = 0;
        my $ev = sub {
            my ($type, %d) = @_;
            return _sse({ type => $type, sequence_number => $seq++, %d },
                $type);
        };
        my $part = { type => 'output_text', text => '', annotations => [] };
        my @ev = (
            $ev->('response.created', response => $resp->('in_progress')),
            $ev->('response.in_progress',
                  response => $resp->('in_progress')),
            $ev->('response.output_item.added', output_index => 0,
                  item => { id => $mid, type => 'message',
                            status => 'in_progress', role => 'assistant',
                            content => [] }),
            $ev->('response.content_part.added', item_id => $mid,
                  output_index => 0, content_index => 0, part => $part),
            (map { $ev->('response.output_text.delta', item_id => $mid,
                         output_index => 0, content_index => 0,
                         delta => $_) } @pieces),
            $ev->('response.output_text.done', item_id => $mid,
                  output_index => 0, content_index => 0, text => $answer),
            $ev->('response.content_part.done', item_id => $mid,
                  output_index => 0, content_index => 0,
                  part => { %$part, text => $answer }),
            $ev->('response.output_item.done', output_index => 0,
                  item => $resp->('completed', $answer)->{output}[0]),
            $ev->('response.completed',
                  response => $resp->('completed', $answer)),
        );
        return $self->_stream($conn, $req, 200, \@ev, @$hdr);
    }

    return $self->_json($conn, $req, 200, $resp->('completed', $answer),
        @$hdr);
}

sub _openai_embeddings {
    my ($self, $conn, $req, $b, $model, $azure, $hdr) = @_;

    my $in = $b->{input};
    my @inputs = ref $in eq 'ARRAY' ? @$in : defined $in ? ($in) : ();
    if (!@inputs) {
        return $self->_json($conn, $req, 400, _openai_error(
            "Missing required parameter: 'input'.", 'invalid_request_error',
            'input', 'missing_required_parameter'), @$hdr);
    }

    my $dims = ($b->{dimensions} // '') =~ /^\d+$/ && $b->{dimensions} > 0
        && $b->{dimensions} <= 4096 ? $b->{dimensions} : 8;
    my $b64 = ($b->{encoding_format} // '') eq 'base64';

    my ($tok, @data) = (0);
    for my $i (0 .. $#inputs) {
        my $t = ref $inputs[$i] ? join(' ', @{ $inputs[$i] }) : $inputs[$i];
        $tok += ref $inputs[$i] ? scalar @{ $inputs[$i] } : _words($t);
        my @v;
        my $seed = sha256(_bytes($t));
        while (@v < $dims) {
            for my $byte (unpack 'C*', $seed) {
                last if @v >= $dims;
                push @v, 0 + sprintf('%.6f', ($byte - 127.5) / 127.5);
            }
            $seed = sha256($seed);
        }
        push @data, { object => 'embedding', index => $i,
            embedding => $b64 ? encode_base64(pack('f<*', @v), '') : \@v };
    }

    return $self->_json($conn, $req, 200, {
        object => 'list', data => \@data, model => $model,
        usage => { prompt_tokens => $tok, total_tokens => $tok },
    }, @$hdr);
}

sub _bytes {
    my ($s) = @_;
    utf8::encode($s) if utf8::is_utf8($s);
    return $s;
}

###########################################################################
# Azure OpenAI

sub _azure {
    my ($self, $conn, $req) = @_;

    my $key = $req->{headers}{'api-key'};
    if (!defined $key || $key ne $self->{keys}{azure_openai}) {
        return $self->_json($conn, $req, 401, { error => { code => '401',
            message => 'Access denied due to invalid subscription key or '
                . 'wrong API endpoint. Make sure to provide a valid key for '
                . 'an active subscription and use a correct regional API '
                . 'endpoint for your resource.' } },
            'apim-request-id' => _hex(16));
    }

    if ($req->{path} !~ m{^/openai/deployments/([A-Za-z0-9._-]+)(/.*)$}) {
        return $self->_json($conn, $req, 404, { error => { code => '404',
            message => 'Resource not found' } });
    }
    my ($dep, $op) = ($1, $2);

    if (($req->{query} // '') !~ /(?:^|&)api-version=[^&]+/) {
        return $self->_json($conn, $req, 404, { error => { code => '404',
            message => 'Resource not found' } });
    }

    return $self->_openai_api($conn, $req, $op, $dep);
}

###########################################################################
# Anthropic

sub _anthropic_error {
    my ($type, $message) = @_;
    return { type => 'error', error => { type => $type,
                                         message => $message } };
}

my %ANTHROPIC_STATUS = (
    400 => 'invalid_request_error', 401 => 'authentication_error',
    403 => 'permission_error', 404 => 'not_found_error',
    413 => 'request_too_large', 429 => 'rate_limit_error',
    500 => 'api_error', 529 => 'overloaded_error',
);

sub _anthropic {
    my ($self, $conn, $req) = @_;

    my $h = $req->{headers};
    my @hdr = ('request-id' => 'req_' . _b62(24),
               'anthropic-organization-id' => '00000000-0000-4000-8000-'
                                              . '000000000000');

    my $key = $h->{'x-api-key'};
    if (!defined $key || $key ne $self->{keys}{anthropic}) {
        return $self->_json($conn, $req, 401, _anthropic_error(
            'authentication_error', 'invalid x-api-key'), @hdr);
    }
    if (!defined $h->{'anthropic-version'}
        || $h->{'anthropic-version'} eq '')
    {
        return $self->_json($conn, $req, 400, _anthropic_error(
            'invalid_request_error', 'anthropic-version: header is '
            . 'required'), @hdr);
    }
    if (defined(my $st = $self->_mock_status($req))) {
        push @hdr, 'retry-after' => 1 if $st == 429;
        return $self->_json($conn, $req, $st, _anthropic_error(
            $ANTHROPIC_STATUS{$st} // 'api_error', "Mock status $st."),
            @hdr);
    }
    if ($req->{path} ne '/v1/messages') {
        return $self->_json($conn, $req, 404, _anthropic_error(
            'not_found_error', 'Not Found'), @hdr);
    }
    if ($req->{method} ne 'POST') {
        return $self->_json($conn, $req, 405, _anthropic_error(
            'invalid_request_error', "Method Not Allowed"), @hdr);
    }

    my $b = _decode_body($req);
    if (!$b) {
        return $self->_json($conn, $req, 400, _anthropic_error(
            'invalid_request_error', 'There was an issue with your request '
            . 'body: it is not valid JSON.'), @hdr);
    }
    for my $f (qw(model max_tokens messages)) {
        next if defined $b->{$f};
        return $self->_json($conn, $req, 400, _anthropic_error(
            'invalid_request_error', "$f: Field required"), @hdr);
    }
    if (ref $b->{messages} ne 'ARRAY') {
        return $self->_json($conn, $req, 400, _anthropic_error(
            'invalid_request_error', 'messages: Input should be a valid '
            . 'list'), @hdr);
    }

    my ($itok, $last) = _chat_tokens($b->{messages});
    $itok += _words(_text($b->{system}));
    my $answer = _answer($last);
    my $id = 'msg_' . _b62(24);
    my $model = "$b->{model}";

    if ($b->{stream}) {
        my @pieces = _pieces($answer);
        my @ev = (
            _sse({ type => 'message_start', message => {
                id => $id, type => 'message', role => 'assistant',
                model => $model, content => [], stop_reason => undef,
                stop_sequence => undef,
                usage => { input_tokens => $itok, output_tokens => 1 } } },
                'message_start'),
            _sse({ type => 'content_block_start', index => 0,
                content_block => { type => 'text', text => '' } },
                'content_block_start'),
            _sse({ type => 'ping' }, 'ping'),
            (map { _sse({ type => 'content_block_delta', index => 0,
                delta => { type => 'text_delta', text => $_ } },
                'content_block_delta') } @pieces),
            _sse({ type => 'content_block_stop', index => 0 },
                'content_block_stop'),
            _sse({ type => 'message_delta',
                delta => { stop_reason => 'end_turn', stop_sequence => undef },
                usage => { output_tokens => scalar @pieces } },
                'message_delta'),
            _sse({ type => 'message_stop' }, 'message_stop'),
        );
        return $self->_stream($conn, $req, 200, \@ev, @hdr);
    }

    my $build = sub {
        my ($text) = @_;
        return {
            id => $id, type => 'message', role => 'assistant',
            model => $model, content => [ { type => 'text', text => $text } ],
            stop_reason => 'end_turn', stop_sequence => undef,
            usage => { input_tokens => $itok, output_tokens => _words($text),
                       cache_creation_input_tokens => 0,
                       cache_read_input_tokens => 0 },
        };
    };
    my $obj = $build->($answer);
    if (defined(my $size = $h->{'x-mock-body-size'})) {
        $obj = $build->(_pad($answer, $size, length $JSON->encode($obj)));
    }
    return $self->_json($conn, $req, 200, $obj, @hdr);
}

###########################################################################
# ServiceNow Table API

sub _snow_error {
    my ($message, $detail) = @_;
    return { error => { message => $message, detail => $detail },
             status => 'failure' };
}

sub _query_params {
    my ($q) = @_;
    my %p;
    for my $kv (split /&/, $q // '') {
        my ($k, $v) = split /=/, $kv, 2;
        next unless defined $k && length $k;
        for ($k, $v) {
            next unless defined;
            tr/+/ /;
            s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
        }
        $p{$k} = $v // '';
    }
    return \%p;
}

sub _snow_fields {
    my ($rec, $fields) = @_;
    return { %$rec } unless defined $fields && length $fields;
    my %want = map { $_ => 1 } split /,/, $fields;
    return { map { $_ => $rec->{$_} } grep { $want{$_} } keys %$rec };
}

sub _snow_now { return strftime('%Y-%m-%d %H:%M:%S', gmtime) }

sub _servicenow {
    my ($self, $conn, $req) = @_;

    my $auth = $req->{headers}{authorization};
    my $tok = defined $auth && $auth =~ /^Bearer\s+(\S.*)$/i ? $1 : undef;
    if (!defined $tok || $tok ne $self->{keys}{servicenow}) {
        return $self->_json($conn, $req, 401, _snow_error(
            'User Not Authenticated', 'Required to provide Auth information'),
            'WWW-Authenticate' => 'Bearer realm="Service-now"');
    }
    if (defined(my $st = $self->_mock_status($req))) {
        return $self->_json($conn, $req, $st, _snow_error(
            "Mock status $st", undef));
    }

    my ($table, $id) = $req->{path} =~ m{^/api/now/table/([a-z0-9_]+)(?:/([0-9a-f]{1,64}))?/?$};
    if (!defined $table) {
        return $self->_json($conn, $req, 400, _snow_error(
            'Requested URI does not represent any resource', undef));
    }
    if ($table ne 'incident') {
        return $self->_json($conn, $req, 400, _snow_error(
            "Invalid table $table", undef));
    }

    my $p = _query_params($req->{query});
    my $m = $req->{method};

    if ($m eq 'GET' && !defined $id) {
        my $st = $self->_state_read();
        my @recs = sort { $a->{number} cmp $b->{number} }
            values %{ $st->{incidents} };
        for my $cond (split /\^/, $p->{sysparm_query} // '') {
            next if $cond =~ /^ORDERBY/;
            if ($cond =~ /^(\w+)(=|!=|LIKE)(.*)$/) {
                my ($f, $op, $v) = ($1, $2, $3);
                @recs = grep {
                    my $x = $_->{$f} // '';
                    $op eq '=' ? $x eq $v : $op eq '!=' ? $x ne $v
                               : index(lc $x, lc $v) >= 0
                } @recs;
            }
        }
        my $total = @recs;
        my $off = ($p->{sysparm_offset} // '') =~ /^\d+$/
            ? $p->{sysparm_offset} : 0;
        my $lim = ($p->{sysparm_limit} // '') =~ /^\d+$/
            ? $p->{sysparm_limit} : 10000;
        @recs = splice(@recs, $off, $lim) if $off < @recs;
        @recs = () if $off >= $total;
        return $self->_json($conn, $req, 200, {
            result => [ map { _snow_fields($_, $p->{sysparm_fields}) } @recs ]
        }, 'X-Total-Count' => $total);
    }

    if ($m eq 'POST' && !defined $id) {
        my $b = _decode_body($req);
        return $self->_json($conn, $req, 400, _snow_error(
            'Exception while reading request',
            'The payload is not valid JSON.')) unless $b;
        my $rec = $self->_state_update(sub {
            my ($st) = @_;
            my $now = _snow_now();
            my $r = {
                sys_id => _hex(16), number => sprintf('INC%07d',
                    $st->{next_number}++),
                short_description => '', description => '',
                category => 'inquiry', priority => '5', impact => '3',
                urgency => '3', state => '1', assignment_group => '',
                assigned_to => '', caller_id => '', opened_at => $now,
                sys_created_on => $now, sys_updated_on => $now,
                sys_updated_by => 'foxgov.mock', sys_mod_count => '0',
                active => 'true',
            };
            _snow_apply($r, $b);
            $st->{incidents}{ $r->{sys_id} } = $r;
            return $r;
        });
        return $self->_json($conn, $req, 201,
            { result => _snow_fields($rec, $p->{sysparm_fields}) },
            'Location' => "https://mock.service-now.com/api/now/table/"
                . "incident/$rec->{sys_id}");
    }

    if (defined $id && ($m eq 'GET' || $m eq 'PATCH' || $m eq 'PUT'
                        || $m eq 'DELETE'))
    {
        my $b;
        if ($m eq 'PATCH' || $m eq 'PUT') {
            $b = _decode_body($req);
            return $self->_json($conn, $req, 400, _snow_error(
                'Exception while reading request',
                'The payload is not valid JSON.')) unless $b;
        }
        my $rec = $self->_state_update(sub {
            my ($st) = @_;
            my $r = $st->{incidents}{$id} or return undef;
            if ($b) {
                _snow_apply($r, $b);
                $r->{sys_updated_on} = _snow_now();
                $r->{sys_updated_by} = 'foxgov.mock';
                $r->{sys_mod_count} = $r->{sys_mod_count} + 1 . '';
            }
            delete $st->{incidents}{$id} if $m eq 'DELETE';
            return { %$r };
        });
        if (!$rec) {
            return $self->_json($conn, $req, 404, _snow_error(
                'No Record found', "Record doesn't exist or ACL restricts "
                . 'the record retrieval'));
        }
        if ($m eq 'DELETE') {
            return $self->_respond($conn, $req, 204, 'application/json', '');
        }
        return $self->_json($conn, $req, 200,
            { result => _snow_fields($rec, $p->{sysparm_fields}) });
    }

    return $self->_json($conn, $req, 405, _snow_error(
        'Method not Supported', "Method $m is not supported for this "
        . 'resource'), 'Allow' => 'GET, POST, PUT, PATCH, DELETE');
}

# Apply a request body to an incident: scalar fields, as strings (the
# Table API answers every field as a string); sys_id and number stay.
sub _snow_apply {
    my ($r, $b) = @_;
    for my $k (keys %$b) {
        next if $k eq 'sys_id' || $k eq 'number';
        next if ref $b->{$k} && !JSON::PP::is_bool($b->{$k});
        next unless defined $b->{$k};
        $r->{$k} = JSON::PP::is_bool($b->{$k})
            ? ($b->{$k} ? 'true' : 'false') : "$b->{$k}";
    }
}

###########################################################################
# Slack Web API

sub _slack {
    my ($self, $conn, $req) = @_;

    my $auth = $req->{headers}{authorization};
    my $tok = defined $auth && $auth =~ /^Bearer\s+(\S.*)$/i ? $1 : undef;
    if (!defined $tok || $tok ne $self->{keys}{slack}) {
        return $self->_json($conn, $req, 200,
            { ok => JSON::PP::false, error => 'invalid_auth' });
    }
    if (defined(my $st = $self->_mock_status($req))) {
        return $self->_json($conn, $req, $st, { ok => JSON::PP::false,
            error => $st == 429 ? 'ratelimited' : 'fatal_error' },
            ($st == 429 ? ('Retry-After' => 1) : ()));
    }

    my ($method) = $req->{path} =~ m{^/api/(.+)$};

    my $b;
    my $ct = $req->{headers}{'content-type'} // '';
    if ($ct =~ m{application/x-www-form-urlencoded}i) {
        $b = _query_params($req->{body});
    } elsif (length $req->{body}) {
        $b = _decode_body($req);
        return $self->_json($conn, $req, 200, { ok => JSON::PP::false,
            error => 'invalid_json' }) unless $b;
    } else {
        $b = _query_params($req->{query});
    }

    if ($method eq 'auth.test') {
        return $self->_json($conn, $req, 200, {
            ok => JSON::PP::true, url => 'https://foxgov-mock.slack.com/',
            team => 'foxgov mock', user => 'foxgov-bot',
            team_id => 'T0MOCK0001', user_id => 'U0MOCKBOT1',
            bot_id => 'B0MOCKBOT1', is_enterprise_install => JSON::PP::false,
        });
    }

    if ($method ne 'chat.postMessage') {
        return $self->_json($conn, $req, 404, { ok => JSON::PP::false,
            error => 'unknown_method' });
    }

    my $ch = $b->{channel};
    if (!defined $ch || ref $ch || $ch eq '') {
        return $self->_json($conn, $req, 200, { ok => JSON::PP::false,
            error => 'channel_not_found' });
    }
    if ((!defined $b->{text} || $b->{text} eq '') && !$b->{blocks}
        && !$b->{attachments})
    {
        return $self->_json($conn, $req, 200, { ok => JSON::PP::false,
            error => 'no_text' });
    }

    my $seq = $self->_state_update(sub { ++$_[0]{slack_seq} });
    my $ts = sprintf('1700000000.%06d', $seq * 100);
    my $chid = $ch =~ /^[CDG][A-Z0-9]+$/ ? $ch
        : 'C' . uc substr(sha256_hex($ch), 0, 10);

    return $self->_json($conn, $req, 200, {
        ok => JSON::PP::true, channel => $chid, ts => $ts,
        message => {
            type => 'message', subtype => 'bot_message',
            text => $b->{text} // '', user => 'U0MOCKBOT1',
            bot_id => 'B0MOCKBOT1', app_id => 'A0MOCKAPP1', ts => $ts,
            team => 'T0MOCK0001',
            ($b->{blocks} ? (blocks => $b->{blocks}) : ()),
            (defined $b->{thread_ts} ? (thread_ts => $b->{thread_ts}) : ()),
        },
    });
}

1;

__END__

=head1 NAME

FoxGov::Test::Upstream - mock model providers and tool APIs for foxgov's
integration tests

=head1 SYNOPSIS

    use FoxGov::Test::Upstream;

    my $up = FoxGov::Test::Upstream->new(
        port => $t->port(8081),
        log  => $t->testdir() . '/upstream.log',
        keys => { openai => 'sk-openai-test' },   # the rest: defaults
    )->start;

    # ... point proxy_pass at http://127.0.0.1:<port>, send requests ...

    my ($r) = $up->requests;
    is($r->{headers}{authorization}, 'Bearer sk-openai-test');
    is($r->{body_sha256}, sha256_hex($body));

    $up->stop;    # also done when $up goes away, and at END

=head1 DESCRIPTION

One server process (forked, in its own process group; it exits by itself
if the test process dies) accepts on 127.0.0.1:port and forks a child per
connection, so slow streams run concurrently.  Requests: HTTP/1.0 and 1.1,
bodies by Content-Length or chunked (with trailers), C<Expect:
100-continue>, keep-alive for HTTP/1.1 unless C<Connection: close>.
Answers are C<HTTP/1.1>: JSON with Content-Length; SSE streams chunked to
an HTTP/1.1 keep-alive request, and otherwise (HTTP/1.0, or C<Connection:
close>) unframed with C<Connection: close> and the end marked by closing.

Each request (but C<GET /mock/health>, the readiness probe) is appended
to the log as one JSON line (O_APPEND, flock)
B<before> it is answered: C<{method, path, query, http_version, headers,
header_order, body, body_sha256, time}>; C<query> is the raw text after
C<?> or undef; C<headers> has lowercase names, repeated ones joined with
C<", ">; C<body> is the raw bytes (one character per byte).

=head1 METHODS

C<new(port =E<gt> N, log =E<gt> PATH, keys =E<gt> {...}, state =E<gt>
PATH, keep_state =E<gt> 1, timeout =E<gt> S, max_conn_seconds =E<gt> S)>
(C<keep_state>: a non-empty state file is carried on instead of seeded
again, as the quickstart's ServiceNow keeps its incidents across runs); C<start> (dies if the
port is taken or the server does not answer C<GET /mock/health> within
C<timeout>, default 10 s); C<stop>; C<is_running>; C<port>; C<base_url>;
C<credentials>; C<requests>; C<last_request>; C<wait_requests($n, $timeout)>;
C<clear_log>; C<incidents> (the ServiceNow records now, by sys_id);
C<reset_state>.  A connection child lives at most C<max_conn_seconds>
(default 120).

Default keys: openai C<sk-openai-test>, azure_openai C<azure-test-key>,
anthropic C<sk-ant-test>, servicenow C<snow-test-token>, slack
C<xoxb-slack-test>.

=head1 ROUTES

Chosen by path on the one port:

=over

=item C</v1/messages> - Anthropic (C<x-api-key>, C<anthropic-version>
required; C<model>, C<max_tokens>, C<messages> required).

=item C</openai/deployments/E<lt>dE<gt>/chat/completions|embeddings?api-version=...>
- Azure OpenAI (C<api-key>); model = the deployment; streams start with
Azure's C<prompt_filter_results> chunk (C<choices: []>), as the real one.

=item C</api/now/table/incident[/E<lt>sys_idE<gt>]> - ServiceNow (Bearer):
GET list (C<sysparm_query> with C<f=v>, C<f!=v>, C<fLIKEv> joined by C<^>;
C<sysparm_limit>, C<sysparm_offset>, C<sysparm_fields>; C<X-Total-Count>),
GET one, PATCH/PUT (fields applied, as strings), POST (201), DELETE (204).
Seeded: C<9d385017c611228701d22104cc95c371> (INC0010001) and
C<e8caedcbc0a80164017df472f39eaed1> (INC0010002).

=item C</api/chat.postMessage>, C</api/auth.test> - Slack (Bearer; JSON or
form body); C<ts> is C<1700000000.000100>, then C<.000200>, ...

=item C</mock/health> (200 C<ok>), C</mock/echo> (the request as JSON), no
key needed.

=item anything else - OpenAI (Bearer): C</v1/chat/completions>,
C</v1/responses>, C</v1/embeddings>; other paths 404.

=back

Content is deterministic: the answer is C<"Summary: "> and the first 40
characters of the last user message (whitespace collapsed;
C<"(empty)"> when there is none), but for a chat completion asking for
structured output named C<incident_triage> (C<response_format> of type
C<json_schema>, as demo/itsm-triage does), answered with the JSON object
C<{summary, category, priority, assignment_group, work_note}> derived from
the words of the last user message (the first of the e-mail, network,
database and hardware word lists it matches picks category and group,
else C<inquiry> and the Service Desk; an outage word and a many-users
word make priority 2, one of them 3, neither 4); prompt/input tokens are the
whitespace-separated words of every message's content (and Anthropic's
C<system>, and C<instructions> for responses) plus 7; completion/output
tokens are the answer's words.  A stream sends one delta per word (words
after the first carry their leading space, so the deltas concatenate to
the answer).

=head1 TEST CONTROLS (request headers)

=over

=item C<X-Mock-Status: CODE> - answer CODE (not 200) with the provider's
error shape (after the credential check; 429 adds C<Retry-After: 1>).

=item C<X-Mock-Delay-Ms: MS> - sleep before answering (after logging).

=item C<X-Mock-Chunk-Delay-Ms: MS> - in a stream, sleep before every
event, the first included (the head is sent at once).

=item C<X-Mock-Abort-After: N> - in a stream, close after N events with no
terminating chunk / C<[DONE]>; in a JSON answer, send the head (with the
full Content-Length) and N bytes of the body, then close.

=item C<X-Mock-Abort-Mode: reset> - with X-Mock-Abort-After: end with a
TCP RST (SO_LINGER 0, after 50 ms) instead of a FIN.

=item C<X-Mock-Body-Size: BYTES> - pad a non-stream chat completion (OpenAI,
Azure) or message (Anthropic) so the body is about BYTES long.

=back

=cut
