using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Replication;

/// <summary>
/// A file's modification time is part of what a mirror keeps: a remote (and what is restored or rebuilt from it) shows
/// the time the file was changed through the drive, not the time the replicator or a resync got to it.
/// </summary>
[TestClass]
public sealed class ModificationTimeTests
{
    /// <summary>Within this, a remote's time is the local facet's: the queue stamps a change just after the local write.</summary>
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(50);

    private static void AssertClose(DateTime want, DateTime got, string what)
        => Assert.IsTrue((want - got).Duration() <= Tick, $"{what}: {got:O}, the local facet's {want:O}");

    [TestMethod]
    [DataRow("directory")]
    [DataRow("folder")]
    public async Task WritesReplicatedLate_KeepTheTimeTheyWereMade_OnTheRemoteAndInARestore(string remoteKind)
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, remoteKind: remoteKind) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        long a = await v.CreateFileAsync("a");
        long b = await v.CreateFileAsync("b");
        long c = await v.CreateFileAsync("c");
        long d = await v.CreateFileAsync("d");
        await v.WriteAsync(d, 0, new byte[5000]);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));

        fx.Faults["remote0"].FailWrite = (_, _, _) => true; // an outage: everything below waits in the queue
        await v.WriteAsync(a, 0, new byte[70_000]);
        await v.SetLengthAsync(b, 12_345);
        var explicitTime = new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc);
        await v.WriteAsync(c, 0, new byte[100]);
        await v.SetAttributesAsync("c", new AttributeChange { LastWriteUtc = explicitTime }); // utimens after a write wins
        await v.WriteAsync(d, 100, new byte[10]);
        await v.RenameAsync("d", "d2"); // renamed after its write in the same batch
        var local = new Dictionary<string, DateTime>();
        foreach (string p in new[] { "a", "b", "c", "d2" })
        {
            local[p] = (await v.StatAsync(p)).LastWriteUtc;
        }
        await Task.Delay(1500); // the replicator gets to them well after they were made
        fx.Faults["remote0"].FailWrite = null;
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)), ReplicationTests.Describe(v));

        IFacet remote = fx.Faults["remote0"];
        foreach (string p in local.Keys)
        {
            NodeInfo r = (await remote.StatAsync(p, default))!.Value;
            AssertClose(local[p], r.LastWriteUtc, $"{remoteKind} remote, {p}");
        }
        Assert.AreEqual(explicitTime, (await remote.StatAsync("c", default))!.Value.LastWriteUtc, "an explicit time is kept exactly");

        await v.DisposeAsync();
        string restored = await fx.RemoteTreeAsync("remote0");
        foreach (string p in local.Keys)
        {
            AssertClose(local[p], File.GetLastWriteTimeUtc(Path.Combine(restored, p)), $"restored from the {remoteKind} remote, {p}");
        }
    }

    /// <summary>A lost local disk rebuilt from the remote shows the files' own times, not the rebuild's.</summary>
    [TestMethod]
    [DataRow("directory")]
    [DataRow("folder")]
    public async Task LostLocalDisk_RebuiltFromTheRemote_KeepsEachFilesTime(string remoteKind)
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, remoteKind: remoteKind) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        var want = new Dictionary<string, DateTime>();
        await v.CreateDirectoryAsync("d");
        for (int i = 0; i < 5; i++)
        {
            string p = $"d/f{i}";
            long id = await v.CreateFileAsync(p);
            await v.WriteAsync(id, 0, new byte[1000 * (i + 1)]);
            if (i == 3)
            {
                await v.SetAttributesAsync(p, new AttributeChange { LastWriteUtc = new DateTime(1999, 12, 31, 23, 59, 59, DateTimeKind.Utc) });
            }
            want[p] = (await v.StatAsync(p)).LastWriteUtc;
            await Task.Delay(200); // each file its own time, apart by more than the tolerance
        }
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        var folders = new Dictionary<string, DateTime> { [""] = (await v.StatAsync("")).LastWriteUtc, ["d"] = (await v.StatAsync("d")).LastWriteUtc };
        await v.DisposeAsync();
        Directory.Delete(fx.FacetPath("local0"), recursive: true); // a new, empty disk
        await Task.Delay(1000); // the rebuild happens well after the files were made

        v = await fx.OpenAsync();
        await Wait.UntilAsync(() => v.GetFacetState("local0") == FacetState.Synchronised, "local0 rebuilt", TimeSpan.FromSeconds(60));
        foreach (var (p, t) in want)
        {
            AssertClose(t, File.GetLastWriteTimeUtc(Path.Combine(fx.FacetPath("local0"), p)), $"rebuilt from the {remoteKind} remote, {p}");
        }
        foreach (var (p, t) in folders)
        {
            AssertClose(t, Directory.GetLastWriteTimeUtc(Path.Combine(fx.FacetPath("local0"), p)), $"rebuilt from the {remoteKind} remote, folder '{p}'");
        }
    }

    /// <summary>A remote resynchronised after the queue overflowed gets the local facet's times with the bytes.</summary>
    [TestMethod]
    public async Task RemoteResyncAfterAnOverflow_CarriesTheLocalTimes()
    {
        SimulatedLink? link = null;
        await using var fx = new VolumeFixture(locals: 1, remotes: 1,
            queue: new QueueOptions { MemoryLimit = 0, DiskLimit = 512 * 1024, SegmentSize = 128 * 1024 })
        {
            Replicate = true,
            Wrap = (o, f) => o.Role == FacetRole.Remote ? link = new SimulatedLink(f) : f,
        };
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("big");
        long small = await v.CreateFileAsync("small");
        await v.WriteAsync(id, 0, new byte[64 * 1024]);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        link!.Down = true;
        for (int i = 0; i < 12; i++)
        {
            await v.WriteAsync(id, i * 65536L, new byte[65536]); // past the queue's 512 KiB: NotSynchronised
        }
        await v.WriteAsync(small, 0, new byte[10]);
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"));
        await v.CreateDirectoryAsync("made-while-released");
        await v.CreateFileAsync("made-while-released/x");
        var want = new Dictionary<string, DateTime> { ["big"] = (await v.StatAsync("big")).LastWriteUtc, ["small"] = (await v.StatAsync("small")).LastWriteUtc };
        var folders = new Dictionary<string, DateTime> { [""] = (await v.StatAsync("")).LastWriteUtc, ["made-while-released"] = (await v.StatAsync("made-while-released")).LastWriteUtc };
        await Task.Delay(1000);
        link.Down = false;
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)), ReplicationTests.Describe(v));
        foreach (var (p, t) in want)
        {
            AssertClose(t, File.GetLastWriteTimeUtc(Path.Combine(fx.FacetPath("remote0"), p)), $"resynchronised remote, {p}");
        }
        foreach (var (p, t) in folders)
        {
            AssertClose(t, Directory.GetLastWriteTimeUtc(Path.Combine(fx.FacetPath("remote0"), p)), $"resynchronised remote, folder '{p}'");
        }
    }

    /// <summary>
    /// A folder's time is that of the last change of names in it (a child made, removed, renamed in or out): mirrored
    /// like a file's, not the time the replicator got there, on the remote and in a restore.
    /// </summary>
    [TestMethod]
    [DataRow("directory")]
    [DataRow("folder")]
    public async Task FolderTimes_ReplicatedLate_AreTheTimesOfTheirLastChangeOfNames(string remoteKind)
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, remoteKind: remoteKind) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateDirectoryAsync("a");
        await v.CreateDirectoryAsync("b");
        await v.CreateDirectoryAsync("b/c");
        await v.CreateFileAsync("a/moved");
        await v.CreateFileAsync("gone");
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));

        fx.Faults["remote0"].FailWrite = (_, _, _) => true; // an outage: everything below waits in the queue
        await Task.Delay(100);
        await v.CreateFileAsync("b/c/new");
        await Task.Delay(100);
        await v.RenameAsync("a/moved", "b/moved"); // a and b
        await Task.Delay(100);
        await v.DeleteFileAsync("gone"); // the root
        await Task.Delay(100);
        await v.CreateDirectoryAsync("b/c/empty"); // made late on the remote: its own time too
        var local = new Dictionary<string, DateTime>();
        foreach (string p in new[] { "", "a", "b", "b/c", "b/c/empty" })
        {
            local[p] = (await v.StatAsync(p)).LastWriteUtc;
        }
        await Task.Delay(1500);
        fx.Faults["remote0"].FailWrite = null;
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)), ReplicationTests.Describe(v));

        IFacet remote = fx.Faults["remote0"];
        foreach (var (p, t) in local)
        {
            AssertClose(t, (await remote.StatAsync(p, default))!.Value.LastWriteUtc, $"{remoteKind} remote, folder '{p}'");
        }
        await v.DisposeAsync();
        string restored = await fx.RemoteTreeAsync("remote0");
        foreach (var (p, t) in local)
        {
            AssertClose(t, Directory.GetLastWriteTimeUtc(Path.Combine(restored, p)), $"restored from the {remoteKind} remote, folder '{p}'");
        }
    }
}
