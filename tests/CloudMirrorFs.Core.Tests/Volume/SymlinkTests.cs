using System.Text;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Queue;
using CloudMirrorFs.Tests.Replication;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Volume;

/// <summary>Symbolic links through the volume: names, the local facet's real links, the queue, reopen and crash.</summary>
[TestClass]
public sealed class SymlinkTests
{
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(60);

    private static async Task<MirrorError> Refused(Func<Task> action) => (await Assert.ThrowsExactlyAsync<MirrorException>(action)).Error;

    private static string? LinkOnDisk(string root, string path) => new FileInfo(Path.Combine(root, path)).LinkTarget;

    [TestMethod]
    public async Task CreateSymlink_ReadLinkStatList_ReportTheLink_AndTheLocalFolderHoldsARealLink()
    {
        await using var fx = new VolumeFixture(locals: 2);
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateDirectoryAsync("d");
        const string target = "../t\u00e4rget/file";
        long id = await v.CreateSymlinkAsync("d/l", target);
        Assert.AreEqual(id, v.LookupId("d/l"));
        Assert.AreEqual(target, await v.ReadLinkAsync("d/l"));
        NodeInfo info = await v.StatAsync("d/l");
        Assert.AreEqual((NodeKind.Symlink, (long)Encoding.UTF8.GetByteCount(target), id), (info.Kind, info.Length, info.FileId));
        NodeInfo listed = (await v.ListAsync("d")).Single();
        Assert.AreEqual(("l", NodeKind.Symlink, (long)Encoding.UTF8.GetByteCount(target), id), (listed.Name, listed.Kind, listed.Length, listed.FileId));
        Assert.AreEqual(NodeKind.Symlink, (await v.StatAsync(id)).Kind);
        Assert.AreEqual(target, LinkOnDisk(fx.FacetPath("local0"), "d/l"), "a real link, target verbatim");
        Assert.AreEqual(target, LinkOnDisk(fx.FacetPath("local1"), "d/l"), "on every local facet");
    }

    [TestMethod]
    public async Task CreateSymlink_WhereSomethingIs_OrUnderANonDirectory_OrBadTarget_Refused_NothingChanges()
    {
        await using var fx = new VolumeFixture();
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateFileAsync("f");
        await v.CreateDirectoryAsync("d");
        await v.CreateSymlinkAsync("l", "d");
        Assert.AreEqual(MirrorError.Exists, await Refused(async () => await v.CreateSymlinkAsync("f", "x")));
        Assert.AreEqual(MirrorError.Exists, await Refused(async () => await v.CreateSymlinkAsync("d", "x")));
        Assert.AreEqual(MirrorError.Exists, await Refused(async () => await v.CreateSymlinkAsync("l", "x")));
        Assert.AreEqual(MirrorError.Exists, await Refused(async () => await v.CreateFileAsync("l")));
        Assert.AreEqual(MirrorError.Exists, await Refused(async () => await v.CreateSymlinkAsync("", "x")));
        Assert.AreEqual(MirrorError.NotDirectory, await Refused(async () => await v.CreateSymlinkAsync("l/under", "x")), "a link is not a directory to create in");
        Assert.AreEqual(MirrorError.NotFound, await Refused(async () => await v.CreateSymlinkAsync("missing/l", "x")));
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.CreateSymlinkAsync("e", "")));
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.CreateSymlinkAsync("e", new string('x', 4096))));
        Assert.AreEqual(MirrorError.InvalidPath, await Refused(async () => await v.CreateSymlinkAsync("../e", "x")));
        Assert.AreEqual("d", await v.ReadLinkAsync("l"));
        CollectionAssert.AreEquivalent(new[] { "d", "f", "l" }, (await v.ListAsync("")).Select(n => n.Name).ToArray());
    }

    [TestMethod]
    public async Task ReadLink_OfAFileOrDirectory_InvalidArgument_OfNothing_NotFound_Symlink()
    {
        await using var fx = new VolumeFixture();
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateFileAsync("f");
        await v.CreateDirectoryAsync("d");
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.ReadLinkAsync("f")));
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.ReadLinkAsync("d")));
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.ReadLinkAsync("")));
        Assert.AreEqual(MirrorError.NotFound, await Refused(async () => await v.ReadLinkAsync("missing")));
    }

    [TestMethod]
    public async Task Symlink_ReadWriteTruncate_RefusedAsInvalidArgument_TheTargetKeepsItsBytes()
    {
        await using var fx = new VolumeFixture(remotes: 1);
        MirrorVolume v = await fx.OpenAsync();
        long file = await v.CreateFileAsync("f");
        await v.WriteAsync(file, 0, "data"u8.ToArray());
        long link = await v.CreateSymlinkAsync("l", "f");
        long tail = v.GetQueueCursor("remote0")!.Tail;
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.WriteAsync(link, 0, "evil"u8.ToArray())));
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.ReadAsync(link, 0, new byte[10])));
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.SetLengthAsync(link, 0)));
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.TruncateAsync("l", 0)));
        Assert.AreEqual(tail, v.GetQueueCursor("remote0")!.Tail, "nothing refused was queued");
        byte[] got = new byte[10];
        Assert.AreEqual(4, await v.ReadAsync(file, 0, got));
        Assert.AreEqual("data", Encoding.UTF8.GetString(got, 0, 4));
    }

    [TestMethod]
    public async Task Symlink_RenameAndDelete_ActOnTheLink_ALinkToADirectoryLeavesTheDirectory()
    {
        await using var fx = new VolumeFixture();
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateDirectoryAsync("real");
        long inner = await v.CreateFileAsync("real/x");
        await v.WriteAsync(inner, 0, "x"u8.ToArray());
        await v.CreateDirectoryAsync("other");
        long id = await v.CreateSymlinkAsync("l", "real");
        await v.RenameAsync("l", "other/m");
        Assert.IsNull(v.LookupId("l"));
        Assert.AreEqual(id, v.LookupId("other/m"), "ids are stable across renames");
        Assert.AreEqual("real", await v.ReadLinkAsync("other/m"));
        Assert.AreEqual("real", LinkOnDisk(fx.FacetPath("local0"), "other/m"));

        long victim = await v.CreateFileAsync("victim");
        await v.RenameAsync("other/m", "victim"); // over a file: POSIX replaces it
        Assert.AreEqual(id, v.LookupId("victim"));
        Assert.IsNull(v.PathOf(victim));
        Assert.AreEqual(MirrorError.IsDirectory, await Refused(async () => await v.RenameAsync("victim", "real")), "a link never replaces a directory");
        Assert.AreEqual(MirrorError.NotDirectory, await Refused(async () => await v.DeleteDirectoryAsync("victim")));

        await v.DeleteFileAsync("victim");
        Assert.IsNull(v.LookupId("victim"));
        Assert.IsNull(LinkOnDisk(fx.FacetPath("local0"), "victim"));
        Assert.IsFalse(File.Exists(Path.Combine(fx.FacetPath("local0"), "victim")));
        Assert.AreEqual("x", File.ReadAllText(Path.Combine(fx.FacetPath("local0"), "real", "x")), "deleting a link to a directory deleted the link only");
        Assert.AreEqual(1, (await v.ListAsync("real")).Count);
    }

    [TestMethod]
    public async Task Symlink_Dangling_Works()
    {
        await using var fx = new VolumeFixture(remotes: 1) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateSymlinkAsync("dangling", "no/such/thing");
        Assert.AreEqual("no/such/thing", await v.ReadLinkAsync("dangling"));
        Assert.AreEqual((NodeKind.Symlink, 13L), ((await v.StatAsync("dangling")).Kind, (await v.StatAsync("dangling")).Length));
        await v.RenameAsync("dangling", "moved");
        Assert.AreEqual(id, v.LookupId("moved"));
        Assert.AreEqual("no/such/thing", await v.ReadLinkAsync("moved"));
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        Assert.AreEqual("no/such/thing", LinkOnDisk(fx.FacetPath("remote0"), "moved"));
        await v.DeleteFileAsync("moved");
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        Assert.AreEqual(0, Directory.GetFileSystemEntries(fx.FacetPath("local0")).Length);
        Assert.AreEqual(0, Directory.GetFileSystemEntries(fx.FacetPath("remote0")).Length);
    }

    [TestMethod]
    [DataRow("/etc")]
    [DataRow("../../outside")]
    [DataRow("../outside")]
    public async Task Symlink_PointingOutside_NoVolumeOperationEscapesTheFacetFolder(string target)
    {
        await using var fx = new VolumeFixture(remotes: 1) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        // ../outside from the local folder's root, ../../outside from a directory in it: the same folder, beside the facets.
        string outside = Path.GetFullPath(Path.Combine(fx.FacetPath("local0"), "..", "outside"));
        Directory.CreateDirectory(outside);
        File.WriteAllText(Path.Combine(outside, "victim"), "secret");
        await v.CreateDirectoryAsync("a");
        string link = target == "../../outside" ? "a/out" : "out";
        await v.CreateSymlinkAsync(link, target);
        long own = await v.CreateFileAsync("own");

        Assert.AreEqual(MirrorError.NotFound, await Refused(async () => await v.StatAsync($"{link}/victim")));
        Assert.AreEqual(MirrorError.NotDirectory, await Refused(async () => await v.ListAsync(link)));
        Assert.AreEqual(MirrorError.NotDirectory, await Refused(async () => await v.CreateFileAsync($"{link}/new")));
        Assert.AreEqual(MirrorError.NotDirectory, await Refused(async () => await v.CreateDirectoryAsync($"{link}/new")));
        Assert.AreEqual(MirrorError.NotDirectory, await Refused(async () => await v.CreateSymlinkAsync($"{link}/new", "x")));
        Assert.AreEqual(MirrorError.NotDirectory, await Refused(async () => await v.RenameAsync("own", $"{link}/own")));
        Assert.AreEqual(MirrorError.NotFound, await Refused(async () => await v.RenameAsync($"{link}/victim", "stolen")));
        Assert.AreEqual(MirrorError.NotFound, await Refused(async () => await v.DeleteFileAsync($"{link}/victim")));
        Assert.AreEqual(MirrorError.NotFound, await Refused(async () => await v.SetAttributesAsync($"{link}/victim", new AttributeChange { Mode = (UnixFileMode)0b111_111_111 })));
        Assert.AreEqual(MirrorError.NotDirectory, await Refused(async () => await v.DeleteDirectoryAsync(link)));
        long linkId = v.LookupId(link)!.Value;
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.WriteAsync(linkId, 0, "evil"u8.ToArray())));
        await v.SetAttributesAsync(link, new AttributeChange { Mode = (UnixFileMode)0b111_111_111, LastWriteUtc = DateTime.UtcNow });
        Assert.AreEqual(target, await v.ReadLinkAsync(link));
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        Assert.AreEqual(target, LinkOnDisk(fx.FacetPath("remote0"), link), "the remote holds the same link");
        await v.RenameAsync(link, "renamed");
        await v.DeleteFileAsync("renamed");
        await v.WriteAsync(own, 0, "mine"u8.ToArray());
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));

        CollectionAssert.AreEqual(new[] { "victim" }, Directory.GetFileSystemEntries(outside).Select(Path.GetFileName).ToArray(), "nothing was created outside");
        Assert.AreEqual("secret", File.ReadAllText(Path.Combine(outside, "victim")));
        Assert.IsTrue(Directory.Exists("/etc") || OperatingSystem.IsWindows());
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("remote0"));
    }

    [TestMethod]
    public async Task Reopen_AfterDispose_KnowsItsSymlinks_SameIdsAndTargets()
    {
        await using var fx = new VolumeFixture(remotes: 1, remoteKind: "folder") { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateDirectoryAsync("d");
        long a = await v.CreateSymlinkAsync("d/a", "../b");
        long b = await v.CreateSymlinkAsync("b", "/etc");
        long moved = await v.CreateSymlinkAsync("m", "x");
        await v.RenameAsync("m", "d/m");
        v = await fx.ReopenAsync();
        Assert.AreEqual(a, v.LookupId("d/a"), "the table of names kept the link's id");
        Assert.AreEqual(b, v.LookupId("b"));
        Assert.AreEqual(moved, v.LookupId("d/m"));
        Assert.AreEqual("../b", await v.ReadLinkAsync("d/a"));
        Assert.AreEqual("/etc", await v.ReadLinkAsync("b"));
        Assert.AreEqual(NodeKind.Symlink, (await v.StatAsync("d/m")).Kind);
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.WriteAsync(b, 0, "x"u8.ToArray())), "still a link, not a file");
        await v.DeleteFileAsync("d/m");
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"));
    }

    [TestMethod]
    public async Task Reopen_ALinkMadeInTheLocalFolderMeanwhile_BecomesASymlinkNode()
    {
        await using var fx = new VolumeFixture();
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateDirectoryAsync("d");
        await v.CreateFileAsync("d/f");
        await v.DisposeAsync();
        File.CreateSymbolicLink(Path.Combine(fx.FacetPath("local0"), "d", "outside-made"), "f");
        File.Delete(Path.Combine(fx.FacetPath("local0"), "d", "f"));
        File.CreateSymbolicLink(Path.Combine(fx.FacetPath("local0"), "d", "f"), "/etc"); // a file replaced by a link to a directory
        v = await fx.OpenAsync();
        Assert.AreEqual("f", await v.ReadLinkAsync("d/outside-made"));
        Assert.AreEqual("/etc", await v.ReadLinkAsync("d/f"));
        Assert.AreEqual(NodeKind.Symlink, (await v.StatAsync("d/f")).Kind);
        Assert.AreEqual(MirrorError.NotDirectory, await Refused(async () => await v.ListAsync("d/f")), "a link to a directory is not walked into");
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.WriteAsync(v.LookupId("d/f")!.Value, 0, "x"u8.ToArray())));
    }

    [TestMethod]
    public async Task Crash_LinksAcknowledgedBeforeAKill_AreInTheTableAndTheQueue_AndReachTheRemote()
    {
        // The kill: the volume's files copied as they are, without any close (the OS cache is what a SIGKILL leaves).
        await using var fx = new VolumeFixture(remotes: 1, remoteKind: "folder");
        MirrorVolume v = await fx.OpenAsync(); // no replicators: the records stay queued
        await v.CreateDirectoryAsync("d");
        long a = await v.CreateSymlinkAsync("d/a", "../elsewhere");
        long b = await v.CreateSymlinkAsync("abs", "/etc");
        Assert.IsTrue(v.ReadQueue("remote0", 0, 100, long.MaxValue).Any(t => t.Kind == TransactionKind.CreateSymlink && t.Path2 == "/etc"));
        using var crashed = new TempDir("crashed");
        var saved = fx.Options.Facets.Select(f => f.Path!).Append(fx.Options.StateDir)
            .Select(p => (Live: p, Copy: Path.Combine(crashed.Path, Path.GetFileName(p)))).ToList();
        foreach (var (live, copy) in saved)
        {
            CopyTree(live, copy, skip: "volume.lock");
        }
        await v.DisposeAsync(); // only to free the lock and handles; what it wrote is thrown away below
        foreach (var (live, copy) in saved)
        {
            Directory.Delete(live, recursive: true);
            CopyTree(copy, live);
        }
        Assert.IsTrue(File.Exists(Path.Combine(fx.Options.StateDir, "running")), "the restart sees a run that never closed");
        fx.Replicate = true;
        MirrorVolume after = await fx.OpenAsync();
        Assert.AreEqual(a, after.LookupId("d/a"), "the table's journal had the link");
        Assert.AreEqual(b, after.LookupId("abs"));
        Assert.AreEqual("../elsewhere", await after.ReadLinkAsync("d/a"));
        Assert.AreEqual(NodeKind.Symlink, (await after.StatAsync("abs")).Kind);
        Assert.IsTrue(await after.DrainAsync(Drain), ReplicationTests.Describe(after));
        string restored = await fx.RemoteTreeAsync("remote0");
        Assert.AreEqual("../elsewhere", LinkOnDisk(restored, "d/a"));
        Assert.AreEqual("/etc", LinkOnDisk(restored, "abs"));
        TreeAssert.Equal(fx.FacetPath("local0"), restored);
    }

    [TestMethod]
    public async Task Degraded_NoLocalFacet_ALinkGoesToTheRemoteBeforeItIsAcknowledged_AndIsReadFromThere()
    {
        await using var fx = new VolumeFixture(remotes: 1) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        long file = await v.CreateFileAsync("f");
        await v.WriteAsync(file, 0, "x"u8.ToArray());
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        fx.Faults["local0"].Offline = true;
        await v.WriteAsync(file, 1, "y"u8.ToArray()); // takes the local facet offline: degraded
        Assert.IsTrue(v.IsDegraded);
        long id = await v.CreateSymlinkAsync("l", "f");
        Assert.AreEqual("f", LinkOnDisk(fx.FacetPath("remote0"), "l"), "acknowledged only once the remote has it");
        Assert.AreEqual("f", await v.ReadLinkAsync("l"), "served by the remote");
        Assert.AreEqual(NodeKind.Symlink, (await v.StatAsync("l")).Kind);
        Assert.AreEqual(id, v.LookupId("l"));
        long tail = v.GetQueueCursor("remote0")!.Tail;
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.WriteAsync(id, 0, "evil"u8.ToArray())), "the volume itself refuses: no local facet is there to");
        Assert.AreEqual(MirrorError.InvalidArgument, await Refused(async () => await v.SetLengthAsync(id, 0)));
        Assert.AreEqual(tail, v.GetQueueCursor("remote0")!.Tail, "nothing refused was queued for the remote");
        Assert.IsTrue(v.GetDirtyMap("local0").Namespace, "the local facet's dirty map says its names differ");
    }

    /// <summary>Copies a folder as it is, links as links.</summary>
    private static void CopyTree(string from, string to, string? skip = null)
    {
        Directory.CreateDirectory(to);
        foreach (FileSystemInfo i in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            string dest = Path.Combine(to, i.Name);
            if (i.Name == skip)
            {
                continue;
            }
            if (i.LinkTarget is { } target)
            {
                File.CreateSymbolicLink(dest, target);
            }
            else if (i is DirectoryInfo)
            {
                CopyTree(i.FullName, dest);
            }
            else
            {
                File.Copy(i.FullName, dest);
            }
        }
    }
}
