using CloudMirrorFs.Host.Config;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Host.Tests;

[TestClass]
public sealed class RestoreTests
{
    private static async Task<byte[]> WriteAndDrainAsync(string dir)
    {
        var options = VolumeConfigLoader.EmbeddedDefault(dir);
        await using MirrorVolume v = await MirrorVolume.OpenAsync(options);
        await v.CreateDirectoryAsync("photos");
        long id = await v.CreateFileAsync("photos/a.jpg");
        byte[] data = new byte[1_000_000];
        new Random(7).NextBytes(data);
        await v.WriteAsync(id, 0, data);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        return data;
    }

    [TestMethod]
    public async Task Restore_FromTheFolderRemoteAlone_OnAnotherMachine_GivesTheTree()
    {
        using var cli = new Cli();
        byte[] data = await WriteAndDrainAsync(cli.Dir);
        // "Another machine": only the remote's folder and a config that names it; no state, no local facet.
        using var other = new Cli();
        string remote = Path.Combine(cli.Dir, ".cmfs", "remote");
        other.Write("cmfs.json", $$"""
            { "volume": { "stateDir": "fresh-state" },
              "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "fresh-local" },
                          { "name": "usb", "role": "remote", "kind": "folder", "path": "{{remote}}" } ] }
            """);
        var (code, stdout, stderr) = await other.RunAsync("restore", "--facet", "usb", "--to", "out");
        Assert.AreEqual(0, code, stderr);
        StringAssert.Contains(stdout, "1 files");
        StringAssert.Contains(stderr, "100%");
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(other.Dir, "out", "photos", "a.jpg")));
        Assert.IsFalse(Directory.Exists(Path.Combine(other.Dir, "fresh-state")), "restore needs no volume state");
    }

    [TestMethod]
    public async Task Restore_IntoANonEmptyFolder_ExitsOneNamingIt()
    {
        using var cli = new Cli();
        await WriteAndDrainAsync(cli.Dir);
        Directory.CreateDirectory(Path.Combine(cli.Dir, "busy"));
        File.WriteAllText(Path.Combine(cli.Dir, "busy", "x"), "x");
        var (code, _, stderr) = await cli.RunAsync("restore", "--facet", "remote", "--to", "busy");
        Assert.AreEqual(1, code);
        StringAssert.Contains(stderr, Path.Combine(cli.Dir, "busy"));
        StringAssert.Contains(stderr, "not empty");
    }

    [TestMethod]
    public async Task Restore_BadArguments_ExitTwo()
    {
        using var cli = new Cli();
        Assert.AreEqual(2, (await cli.RunAsync("restore", "--facet", "nope", "--to", "x")).Code, "unknown facet");
        Assert.AreEqual(2, (await cli.RunAsync("restore", "--facet", "local", "--to", "x")).Code, "a directory facet is plain files already");
        Assert.AreEqual(2, (await cli.RunAsync("restore", "--to", "x")).Code, "--facet is required");
        Assert.AreEqual(2, (await cli.RunAsync("restore", "--facet", "remote", "--to", "x", "--at", "yesterday-ish")).Code);
    }

    [TestMethod]
    public async Task Restore_EmptyRemote_ExitsOneSayingItHoldsNoVolume()
    {
        using var cli = new Cli();
        Directory.CreateDirectory(Path.Combine(cli.Dir, "empty-bucket"));
        cli.Write("cmfs.json", """
            { "volume": { "stateDir": "s" },
              "facets": [ { "name": "l", "role": "local", "kind": "directory", "path": "l" },
                          { "name": "r", "role": "remote", "kind": "folder", "path": "empty-bucket" } ] }
            """);
        var (code, _, stderr) = await cli.RunAsync("restore", "--facet", "r", "--to", "out");
        Assert.AreEqual(1, code);
        StringAssert.Contains(stderr, "holds no CloudMirrorFs volume");
    }
}
