using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Replication;

/// <summary>Symbolic links reach every remote: through the queue, and through a namespace resync of a remote that drifted.</summary>
[TestClass]
public sealed class SymlinkReplicationTests
{
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(60);

    /// <summary>Links of every sort, renamed, replaced and deleted, beside files and directories.</summary>
    private static async Task<Dictionary<string, string>> LinkWorkloadAsync(MirrorVolume v)
    {
        await ReplicationTests.WorkloadAsync(v, 7, files: 3);
        await v.CreateDirectoryAsync("links");
        await v.CreateDirectoryAsync("links/sub");
        long file = await v.CreateFileAsync("links/sub/file");
        await v.WriteAsync(file, 0, "payload"u8.ToArray());
        var links = new Dictionary<string, string>
        {
            ["links/to-file"] = "sub/file",
            ["links/to-dir"] = "sub",
            ["links/abs"] = "/etc",
            ["links/dangling"] = "no/such/thing",
            ["links/sub/escape"] = "../../outside",
            ["links/unicode"] = "d\u00e9j\u00e0 vu/\u65e5\u672c",
            ["links/moved-away"] = "before-rename",
            ["links/replaced"] = "old-target",
            ["links/deleted"] = "gone",
        };
        foreach (var (path, target) in links)
        {
            await v.CreateSymlinkAsync(path, target);
        }
        await v.RenameAsync("links/moved-away", "links/sub/moved-here");
        links["links/sub/moved-here"] = links["links/moved-away"];
        links.Remove("links/moved-away");
        await v.DeleteFileAsync("links/replaced");
        await v.CreateSymlinkAsync("links/replaced", "new-target");
        links["links/replaced"] = "new-target";
        await v.DeleteFileAsync("links/deleted");
        links.Remove("links/deleted");
        await v.RenameAsync("links", "moved"); // a directory holding links: they move with it
        return links.ToDictionary(kv => "moved" + kv.Key["links".Length..], kv => kv.Value);
    }

    private static void AssertLinks(string root, Dictionary<string, string> links, string because)
    {
        foreach (var (path, target) in links)
        {
            Assert.AreEqual(target, new FileInfo(Path.Combine(root, path)).LinkTarget, $"{because}: {path}");
        }
    }

    [TestMethod]
    [DataRow("directory")]
    [DataRow("folder")]
    public async Task Drain_Symlinks_TheRemoteHoldsTheSameLinks(string kind)
    {
        await using var fx = new VolumeFixture(remotes: 1, remoteKind: kind) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        Dictionary<string, string> links = await LinkWorkloadAsync(v);
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"), "applied through the queue, no resync needed");
        AssertLinks(fx.FacetPath("local0"), links, "local");
        // A directory remote holds real links; an object-store remote's image restores to real links.
        string remote = await fx.RemoteTreeAsync("remote0");
        AssertLinks(remote, links, kind);
        TreeAssert.Equal(fx.FacetPath("local0"), remote, kind);
        Assert.IsFalse(File.Exists(Path.Combine(remote, "moved", "deleted")) || new FileInfo(Path.Combine(remote, "moved", "deleted")).LinkTarget is not null);
    }

    [TestMethod]
    [DataRow("directory")]
    [DataRow("folder")]
    public async Task Resync_DriftedRemote_MissingLinksCreated_ExtraRemoved_DifferentTargetsReplaced(string kind)
    {
        await using var fx = new VolumeFixture(remotes: 1, remoteKind: kind) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateDirectoryAsync("d");
        long file = await v.CreateFileAsync("d/f");
        await v.WriteAsync(file, 0, "bytes"u8.ToArray());
        await v.CreateSymlinkAsync("d/same", "f");
        await v.CreateSymlinkAsync("d/missing", "f");
        await v.CreateSymlinkAsync("d/retargeted", "right");
        await v.CreateSymlinkAsync("d/was-a-file", "f");
        await v.CreateDirectoryAsync("d/dir");
        long inner = await v.CreateFileAsync("d/dir/inner");
        await v.WriteAsync(inner, 0, "inner"u8.ToArray());
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));

        // The remote drifts behind the volume's back (a bad disk, a hand edit), as only a resync can repair.
        string outside = Path.Combine(fx.FacetPath("local0"), "..", "outside");
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(outside, "keep"), "kept");
        IFacet remote = v.GetFacet("remote0");
        await remote.DeleteFileAsync(new FileRef(0, "d/missing"), default);
        await remote.CreateSymlinkAsync(new FileRef(0, "d/retargeted"), "wrong", default);
        await remote.CreateSymlinkAsync(new FileRef(0, "d/extra"), Path.GetFullPath(outside), default);
        await remote.DeleteFileAsync(new FileRef(0, "d/was-a-file"), default);
        await remote.CreateFileAsync(new FileRef(0, "d/was-a-file"), (UnixFileMode)0b110_100_100, default);
        await remote.DeleteFileAsync(new FileRef(0, "d/dir/inner"), default);
        await remote.DeleteDirectoryAsync("d/dir", default);
        await remote.CreateSymlinkAsync(new FileRef(0, "d/dir"), Path.GetFullPath(outside), default); // a link where a directory belongs

        v.RequestResync("remote0", full: false);
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        string tree = await fx.RemoteTreeAsync("remote0");
        TreeAssert.Equal(fx.FacetPath("local0"), tree, kind);
        Assert.AreEqual("f", new FileInfo(Path.Combine(tree, "d", "missing")).LinkTarget);
        Assert.AreEqual("right", new FileInfo(Path.Combine(tree, "d", "retargeted")).LinkTarget);
        Assert.AreEqual("f", new FileInfo(Path.Combine(tree, "d", "was-a-file")).LinkTarget);
        Assert.AreEqual("inner", File.ReadAllText(Path.Combine(tree, "d", "dir", "inner")));
        Assert.AreEqual("kept", File.ReadAllText(Path.Combine(outside, "keep")), "removing a link to a directory removed the link only");
        CollectionAssert.AreEqual(new[] { "keep" }, Directory.GetFileSystemEntries(outside).Select(Path.GetFileName).ToArray());
    }

    [TestMethod]
    public async Task Restore_FromAFolderRemoteAlone_GivesRealLinks_AndCountsThem_Symlink()
    {
        await using var fx = new VolumeFixture(remotes: 1, remoteKind: "folder") { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        Dictionary<string, string> links = await LinkWorkloadAsync(v);
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        await v.DisposeAsync();
        using var dir = new TempDir("restore");
        string target = Path.Combine(dir.Path, "tree");
        RemoteRestore.Result r = await RemoteRestore.RestoreAsync(FacetFactory.CreateStore(fx.Options.Facets[1]), target, null, null, default);
        Assert.AreEqual(links.Count, r.Symlinks);
        AssertLinks(target, links, "restored");
        TreeAssert.Equal(fx.FacetPath("local0"), target);
        Assert.IsFalse(Directory.Exists(Path.Combine(target, "outside")), "a link's target is never made by the restore");
    }
}
