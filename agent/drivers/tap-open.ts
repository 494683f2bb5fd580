/**
 * How a VM opens its tap devices when the host's network lives in a network namespace of its own (the agent's
 * `--network-namespace`, a stand-in host): qemu must stay in the machine's namespace (its user network publishes
 * ports on the machine's 127.0.0.1 and carries egress), but a tap can only be opened by name from the namespace
 * it is in. A short Perl program (perl-base is in every Debian) enters the namespace, opens each tap
 * (/dev/net/tun, TUNSETIFF), returns to its own namespace and execs qemu with the open files inherited; qemu
 * takes them as `-netdev tap,fd=N`. Without a namespace qemu opens the taps by name itself (`ifname=`).
 */

/** Placeholder for the descriptor of the `i`-th tap in qemu's arguments (replaced by the opener). */
export const tapFdPlaceholder = (i: number): string => `@TAPFD${i}@`;

/**
 * The opener: `perl -e OPENER <netns path> <tap>... -- <qemu> <arg>...`. setns(2) is syscall 308 on x86-64;
 * TUNSETIFF is 0x400454ca with IFF_TAP|IFF_NO_PI, as `ip tuntap add mode tap` makes them.
 */
const OPENER = String.raw`
use strict;
my $ns = shift @ARGV;
my @taps;
while (@ARGV && $ARGV[0] ne '--') { push @taps, shift @ARGV; }
shift @ARGV;
$^F = 1023;
open(my $home, '<', '/proc/self/ns/net') or die "own netns: $!\n";
open(my $there, '<', $ns) or die "netns $ns: $!\n";
syscall(308, fileno($there), 0x40000000) == 0 or die "entering $ns: $!\n";
my @fds;
for my $tap (@taps) {
  open(my $fh, '+<', '/dev/net/tun') or die "/dev/net/tun: $!\n";
  my $ifr = pack('a16 s x22', $tap, 0x1002);
  ioctl($fh, 0x400454ca, $ifr) or die "tap $tap in $ns: $!\n";
  push @fds, $fh;
}
syscall(308, fileno($home), 0x40000000) == 0 or die "leaving $ns: $!\n";
close($there);
close($home);
s/\@TAPFD(\d+)\@/fileno($fds[$1])/ge for @ARGV;
exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\n";
`;

/** The command that runs `qemu args` with the taps of namespace `netnsPath` open (see the module comment). */
export function withTapsOpened(
  netnsPath: string,
  taps: readonly string[],
  qemu: string,
  args: readonly string[],
): { file: string; args: string[] } {
  return { file: 'perl', args: ['-e', OPENER, netnsPath, ...taps, '--', qemu, ...args] };
}
