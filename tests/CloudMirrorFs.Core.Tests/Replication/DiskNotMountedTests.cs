using CloudMirrorFs.Facets;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Replication;

/// <summary>
/// A facet's folder on a disk of its own, and that disk not mounted: unmounted under the running volume, or missing
/// at the next start (a USB disk not plugged in, an fstab entry with nofail). The mount point stays, empty, on the
/// file system below. Before, that empty folder was taken for a lost disk and the whole volume was rebuilt into it,
/// onto the system disk, and a folder store was set up afresh there. Now the facet is unavailable until its disk is
/// back, then catches up with what changed meanwhile. The disk is a real bind mount.
/// </summary>
[TestClass]
public sealed class DiskNotMountedTests
{
    private const int Block = 64 * 1024;

    [TestMethod]
    public async Task LocalDiskUnmounted_WhileRunningAndAtTheNextOpen_ServedFromTheRemote_NothingWrittenBelow_CatchesUpWhenBack()
    {
        using var logs = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block, remoteKind: "folder") { Replicate = true, Logs = logs };
        string mountPoint = fx.FacetPath("local0");
        using var disk = new BindMount(mountPoint + "-disk", mountPoint);
        MirrorVolume v = await fx.OpenAsync();
        var model = new Dictionary<string, byte[]>();
        await WriteFileAsync(v, model, "a", 3 * Block + 17, seed: 1);
        await v.CreateDirectoryAsync("d");
        await WriteFileAsync(v, model, "d/b", Block, seed: 2);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)));

        disk.Unmount();
        await AssertModelAsync(v, model); // from the remote: the files did not vanish for the volume's users
        await WriteFileAsync(v, model, "c", 2 * Block, seed: 3); // a new top-level name: it must not land below the mount point
        await WriteFileAsync(v, model, "a", Block, seed: 4);
        await Task.Delay(3500); // the local resync tries to open the facet again meanwhile (after 1 s, then 2 s)
        Assert.AreNotEqual(FacetState.Synchronised, v.GetFacetState("local0"));
        StringAssert.Contains(v.GetStatus().Facets.Single(f => f.Name == "local0").Reason, "not mounted", "status says why it is not back");
        string[] said = [.. logs.Messages.Where(m => m.StartsWith("Warning", StringComparison.Ordinal) && m.Contains("not mounted", StringComparison.Ordinal))];
        Assert.AreEqual(1, said.Length, $"the cause is logged once, not at every retry: {string.Join(" | ", said)}");
        AssertEmpty(mountPoint, "while the disk is unmounted");
        await AssertModelAsync(v, model);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)));

        // Stopped and started again with the disk still missing: served from the remote, nothing rebuilt below.
        v = await fx.ReopenAsync();
        StringAssert.Contains(v.GetStatus().Facets.Single(f => f.Name == "local0").Reason, "not mounted");
        await AssertModelAsync(v, model);
        await Task.Delay(16_000); // long enough for a doubling retry delay to reach 16 s; an unopened facet's stays at 5
        AssertEmpty(mountPoint, "after a start without the disk");

        disk.Mount(); // the disk is back, with what it held: it catches up with what changed while it was away
        await Wait.UntilAsync(() => v.GetFacetState("local0") == FacetState.Synchronised, "local0 caught up within 10 s of its disk coming back", TimeSpan.FromSeconds(10));
        await AssertModelAsync(v, model);
        foreach (var (path, bytes) in model)
        {
            CollectionAssert.AreEqual(bytes, File.ReadAllBytes(Path.Combine(mountPoint, path)), $"{path} on the disk once back");
        }
    }

    [TestMethod]
    public async Task FolderStoreDiskUnmounted_WhileRunningAndAtTheNextOpen_NoStoreStartedBelow_CatchesUpWhenBack()
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block, remoteKind: "folder") { Replicate = true };
        string mountPoint = fx.FacetPath("remote0");
        using var disk = new BindMount(mountPoint + "-disk", mountPoint);
        MirrorVolume v = await fx.OpenAsync();
        var model = new Dictionary<string, byte[]>();
        await WriteFileAsync(v, model, "a", 3 * Block + 17, seed: 1);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)));

        disk.Unmount();
        await WriteFileAsync(v, model, "b", 2 * Block, seed: 2);
        await WriteFileAsync(v, model, "a", Block, seed: 3);
        Assert.IsFalse(await v.DrainAsync(TimeSpan.FromSeconds(2)), "drained into a folder whose disk is not mounted");
        AssertEmpty(mountPoint, "while the disk is unmounted");

        v = await fx.ReopenAsync();
        Assert.IsFalse(await v.DrainAsync(TimeSpan.FromSeconds(2)), "drained after a start without the disk");
        StringAssert.Contains(v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason, "not mounted");
        AssertEmpty(mountPoint, "after a start without the disk");

        disk.Mount();
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(90)), "drained once the disk is back");
        await v.DisposeAsync();
        string restored = await fx.RemoteTreeAsync("remote0");
        foreach (var (path, bytes) in model)
        {
            CollectionAssert.AreEqual(bytes, File.ReadAllBytes(Path.Combine(restored, path)), $"{path} restored from the store once its disk is back");
        }
    }

    /// <summary>Creates <paramref name="path"/> if new and writes <paramref name="length"/> random bytes at its start, in the volume and in the model.</summary>
    private static async Task WriteFileAsync(MirrorVolume v, Dictionary<string, byte[]> model, string path, int length, int seed)
    {
        long id = v.LookupId(path) ?? await v.CreateFileAsync(path);
        byte[] data = new byte[length];
        new Random(seed).NextBytes(data);
        await v.WriteAsync(id, 0, data);
        byte[] old = model.GetValueOrDefault(path, []);
        byte[] now = new byte[Math.Max(old.Length, length)];
        old.CopyTo(now, 0);
        data.CopyTo(now, 0);
        model[path] = now;
    }

    private static async Task AssertModelAsync(MirrorVolume v, Dictionary<string, byte[]> model)
    {
        foreach (var (path, bytes) in model)
        {
            byte[] back = new byte[bytes.Length + 1];
            int n = await v.ReadAsync(v.LookupId(path)!.Value, 0, back);
            CollectionAssert.AreEqual(bytes, back[..n], $"{path} through the volume");
        }
    }

    private static void AssertEmpty(string folder, string when)
    {
        string[] found = Directory.GetFileSystemEntries(folder, "*", SearchOption.AllDirectories);
        Assert.AreEqual(0, found.Length, $"{when}, the disk below the mount point got: {string.Join(", ", found.Take(5))}");
    }
}
