using System.Diagnostics;
using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Host.Control;

namespace CloudMirrorFs.Host.Tests;

/// <summary>The control socket's abstract name has no file permissions: who answers on it is checked by the client too.</summary>
[TestClass]
public sealed class ControlSocketTests
{
    /// <summary>
    /// A process of another user binds the abstract name first and answers every request with "done": before, a
    /// client with no socket file to try (the state folder's disk dead, or no instance running) took that answer, so
    /// <c>cmfs drain</c> could tell a backup script that everything was on the remote when nothing had been asked.
    /// </summary>
    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task AProcessOfAnotherUserOnTheAbstractName_IsNotAsked()
    {
        Assert.AreEqual(0u, ControlEndpoint.Geteuid(), "the premise: the tests run as root, so another user can be made (setpriv)");
        using var cli = new Cli();
        Assert.AreEqual(0, (await cli.RunAsync("init")).Code);
        string stateDir = VolumeConfigLoader.EmbeddedDefault(cli.Dir).StateDir;
        string name = ControlEndpoint.All(stateDir).Single(ControlEndpoint.IsAbstract).ToString()[1..];
        using Process squatter = StartSquatter(name);
        try
        {
            var (code, stdout, stderr) = await cli.RunAsync("status", "--json");
            Assert.AreEqual(0, code, stdout + stderr);
            StringAssert.Contains(stdout, "\"facets\"", "the volume's own status, not the squatter's answer");
            StringAssert.Contains(stderr, "another user (uid 65534)", stderr);

            (code, stdout, stderr) = await cli.RunAsync("drain", "--timeout", "20");
            Assert.AreEqual(0, code, stdout + stderr);
            StringAssert.Contains(stderr, "not asked", stderr);
        }
        finally
        {
            squatter.Kill();
            await squatter.WaitForExitAsync();
        }
    }

    /// <summary>
    /// Root asks a mount that the state folder's owner runs (<c>sudo cmfs status</c> against a user's drive): that
    /// server is trusted, as it trusts root.
    /// </summary>
    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task RootAsksTheStateFoldersOwner_IsAnswered()
    {
        using var cli = new Cli();
        Assert.AreEqual(0, (await cli.RunAsync("init")).Code);
        string stateDir = VolumeConfigLoader.EmbeddedDefault(cli.Dir).StateDir;
        using (Process chown = Process.Start("chown", ["65534", stateDir]))
        {
            await chown.WaitForExitAsync();
            Assert.AreEqual(0, chown.ExitCode, "chown");
        }
        string name = ControlEndpoint.All(stateDir).Single(ControlEndpoint.IsAbstract).ToString()[1..];
        using Process owner = StartSquatter(name); // stands in for the owner's mount: it answers "done" with no status
        try
        {
            var (code, stdout, stderr) = await cli.RunAsync("status", "--json");
            Assert.AreEqual(1, code, stdout + stderr);
            StringAssert.Contains(stderr, "sent no status", "the owner's instance was asked: " + stderr);
            Assert.IsFalse(stderr.Contains("not asked", StringComparison.Ordinal), stderr);
        }
        finally
        {
            owner.Kill();
            await owner.WaitForExitAsync();
        }
    }

    /// <summary>Binds <paramref name="name"/> as the abstract name, as user 65534 (nobody), and answers "exit code 0" to anything.</summary>
    private static Process StartSquatter(string name)
    {
        const string Script = """
            use Socket; $| = 1;
            socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
            bind($s, pack_sockaddr_un("\0" . $ARGV[0])) or die "bind: $!";
            listen($s, 5) or die "listen: $!";
            print "ready\n";
            while (accept(my $c, $s)) { my $line = <$c>; print $c "{\"exitCode\":0}\n"; close $c; }
            """;
        var psi = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "--reuid=65534", "--regid=65534", "--clear-groups", "perl", "-e", Script, name })
        {
            psi.ArgumentList.Add(a);
        }
        Process p = Process.Start(psi) ?? throw new AssertFailedException("setpriv could not be started (util-linux)");
        string? ready = p.StandardOutput.ReadLine();
        if (ready != "ready")
        {
            p.Kill();
            throw new AssertFailedException($"the squatter did not start: {p.StandardError.ReadToEnd()}");
        }
        return p;
    }
}
