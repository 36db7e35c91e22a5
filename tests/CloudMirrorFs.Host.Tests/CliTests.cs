using System.Text.Json;

namespace CloudMirrorFs.Host.Tests;

[TestClass]
public sealed class CliTests
{
    [TestMethod]
    public async Task Init_NoConfig_CreatesAndPrintsTheEmbeddedDefault_ThenReusesIt()
    {
        using var cli = new Cli();
        var (code, stdout, stderr) = await cli.RunAsync("init");
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stderr, "embedded default");
        StringAssert.Contains(stderr, Path.Combine(cli.Dir, ".cmfs", "state"));
        StringAssert.Contains(stderr, Path.Combine(cli.Dir, "drive"));
        Assert.IsTrue(Directory.Exists(Path.Combine(cli.Dir, ".cmfs", "local")));
        Assert.IsTrue(Directory.Exists(Path.Combine(cli.Dir, ".cmfs", "remote")));
        StringAssert.Contains(stdout, "initialised");

        var again = await cli.RunAsync("init");
        Assert.AreEqual(0, again.Code);
        Assert.IsFalse(again.Err.Contains("embedded default", StringComparison.Ordinal), "printed only when first created");
        StringAssert.Contains(again.Out, "already initialised");
    }

    [TestMethod]
    public async Task Mount_OnAFile_SaysWhatToDo_AndDoesNotClaimToHaveUnmounted()
    {
        using var cli = new Cli();
        cli.Write("drive", "not a folder");
        var (code, stdout, stderr) = await cli.RunAsync("mount");
        Assert.AreEqual(1, code, stdout + stderr);
        StringAssert.Contains(stderr, "the mount point is a file; set mount.path to a folder");
        Assert.IsFalse(stdout.Contains("unmounted", StringComparison.Ordinal), "nothing was mounted: " + stdout);
        StringAssert.Contains(stdout, "not mounted");
        Assert.AreEqual("not a folder", File.ReadAllText(Path.Combine(cli.Dir, "drive")), "the file is left as it was");
    }

    [TestMethod]
    public async Task Status_Json_HasTheDocumentedFields()
    {
        using var cli = new Cli();
        string cfg = cli.Write("cmfs.json", """
            { "volume": { "name": "v1", "stateDir": "st" },
              "facets": [ { "name": "here", "role": "local", "kind": "directory", "path": "here" },
                          { "name": "there", "role": "remote", "kind": "directory", "path": "there" } ] }
            """);
        Assert.AreEqual(0, (await cli.RunAsync("init")).Code, "./cmfs.json is found without --config");
        var (code, stdout, stderr) = await cli.RunAsync("status", "--json", "--config", cfg);
        Assert.AreEqual(0, code, stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement root = doc.RootElement;
        Assert.AreEqual("v1", root.GetProperty("volume").GetString());
        Assert.AreEqual(262144, root.GetProperty("blockSize").GetInt32());
        JsonElement queue = root.GetProperty("queue");
        Assert.AreEqual(0, queue.GetProperty("memoryBytes").GetInt64());
        Assert.AreEqual(CloudMirrorFs.Options.QueueOptions.DefaultMemoryLimit, queue.GetProperty("memoryLimit").GetInt64(), "no queue section: the machine's default");
        Assert.AreEqual(20L << 30, queue.GetProperty("diskLimit").GetInt64());
        JsonElement facets = root.GetProperty("facets");
        Assert.AreEqual(2, facets.GetArrayLength());
        JsonElement there = facets[1];
        Assert.AreEqual("there", there.GetProperty("name").GetString());
        Assert.AreEqual("remote", there.GetProperty("role").GetString());
        Assert.AreEqual("directory", there.GetProperty("kind").GetString());
        Assert.AreEqual("synchronised", there.GetProperty("state").GetString());
        Assert.AreEqual(0, there.GetProperty("queuedEntries").GetInt64());
        Assert.AreEqual(0, there.GetProperty("queuedBytes").GetInt64());
        Assert.AreEqual(JsonValueKind.Null, there.GetProperty("oldestUnreplicatedSeconds").ValueKind);
        Assert.AreEqual(0, there.GetProperty("dirtyLocations").GetInt64());
        Assert.IsTrue(there.TryGetProperty("resyncProgress", out _));
    }

    [TestMethod]
    public async Task Status_Uninitialised_ExitsOneWithWhatToDo()
    {
        using var cli = new Cli();
        var (code, _, stderr) = await cli.RunAsync("status");
        Assert.AreEqual(1, code);
        StringAssert.Contains(stderr, "cmfs init");
        Assert.IsFalse(Directory.Exists(Path.Combine(cli.Dir, ".cmfs")), "status creates nothing");
    }

    [TestMethod]
    [DataRow("status")]
    [DataRow("drain")]
    public async Task StateFolderGone_WhileTheDriveIsMounted_SaysStopTheMountFirst_NotRunInit(string verb)
    {
        // The embedded default's drive is ./drive; a file system mounted there with no ./.cmfs/state is what a
        // running mount whose state folder was deleted looks like (its control socket went with the folder).
        using var cli = new Cli();
        using var drive = new CloudMirrorFs.Tests.Support.SmallDisk(1, Path.Combine(cli.Dir, "drive"));
        var (code, _, stderr) = await cli.RunAsync(verb);
        Assert.AreEqual(1, code, stderr);
        StringAssert.Contains(stderr, "is mounted", stderr);
        StringAssert.Contains(stderr, "stop it", stderr);
        Assert.IsFalse(stderr.Contains("run 'cmfs init'", StringComparison.Ordinal), stderr);
    }

    [TestMethod]
    [DataRow("status")]
    [DataRow("drain")]
    [DataRow("verify")]
    public async Task StateFolderThatCannotBeRead_IsNamedAsSuch_NotCalledUninitialised(string verb)
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Inconclusive("a symbolic-link loop needs a Unix file system");
        }
        using var cli = new Cli();
        // A state folder the OS cannot resolve (a link loop, ELOOP): a stand-in for a disk that fails to answer.
        File.CreateSymbolicLink(Path.Combine(cli.Dir, "loop1"), "loop2");
        File.CreateSymbolicLink(Path.Combine(cli.Dir, "loop2"), "loop1");
        string cfg = cli.Write("cmfs.json", """
            { "volume": { "stateDir": "loop1" }, "facets": [ { "name": "here", "role": "local", "kind": "directory", "path": "here" } ] }
            """);
        var (code, _, stderr) = await cli.RunAsync(verb, "--config", cfg);
        Assert.AreEqual(1, code, stderr);
        StringAssert.Contains(stderr, $"state folder {Path.Combine(cli.Dir, "loop1")}");
        Assert.IsFalse(stderr.Contains("cmfs init", StringComparison.Ordinal), $"not 'run cmfs init': {stderr}");
    }

    [TestMethod]
    public async Task Process_BadConfigExitsTwo_InitExitsZero_UnknownVerbExitsTwo()
    {
        using var cli = new Cli();
        cli.Write("bad.json", """{ "volume": { "stateDir": "s" }, "facets": [ { "name": "l", "role": "local", "kind": "tape", "path": "l" } ] }""");
        var bad = await cli.RunProcessAsync("init", "--config", "bad.json");
        Assert.AreEqual(2, bad.Code, bad.Err);
        StringAssert.Contains(bad.Err, "facets[0].kind");
        var ok = await cli.RunProcessAsync("init");
        Assert.AreEqual(0, ok.Code, ok.Err);
        var status = await cli.RunProcessAsync("status");
        Assert.AreEqual(0, status.Code, status.Err);
        StringAssert.Contains(status.Out, "remote");
        var usage = await cli.RunProcessAsync("frobnicate");
        Assert.AreEqual(2, usage.Code);
    }

    [TestMethod]
    public async Task Status_WhileAnotherInstanceHoldsTheVolume_ExitsOneNamingIt()
    {
        using var cli = new Cli();
        Assert.AreEqual(0, (await cli.RunAsync("init")).Code);
        var options = CloudMirrorFs.Host.Config.VolumeConfigLoader.EmbeddedDefault(cli.Dir);
        await using var held = await CloudMirrorFs.Volume.MirrorVolume.OpenAsync(options, runtime: new CloudMirrorFs.Volume.VolumeRuntimeOptions { Replicate = false });
        var (code, _, stderr) = await cli.RunAsync("status");
        Assert.AreEqual(1, code);
        StringAssert.Contains(stderr, "in use");
    }
}
