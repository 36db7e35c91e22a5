using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Volume;

/// <summary>The activity log: durable before a change, coarse, and trimmed only behind a barrier.</summary>
[TestClass]
public sealed class ActivityLogTests
{
    private const int BlockSize = 64 * 1024;

    [TestMethod]
    public void Enter_ANewRegion_IsOnTheDiskBeforeItReturns_AndAKnownOneCostsNoWrite()
    {
        using var dir = new TempDir("activity", PageCache.DiskFolder);
        string path = Path.Combine(dir.Path, "activity.map");
        using ActivityLog log = ActivityLog.Open(path, BlockSize);
        long before = new FileInfo(path).Length;

        log.Enter(fileId: 1000, offset: 5 << 20, length: 4096);
        Assert.AreEqual(0, PageCache.DirtyPages(path), "the region reached the disk before Enter returned");
        long afterFirst = new FileInfo(path).Length;
        Assert.IsTrue(afterFirst > before, "one record appended");

        log.Enter(fileId: 1001, offset: 7 << 20, length: 1 << 20); // same 64 files, same 64 MiB
        log.Enter(fileId: 1000, offset: 5 << 20, length: 4096);
        Assert.AreEqual(afterFirst, new FileInfo(path).Length, "a region already logged appends nothing");
        Assert.AreEqual(1, log.Count);

        log.Enter(fileId: 1000, offset: (64L << 20) - 10, length: 20); // straddles two regions
        Assert.AreEqual(2, log.Count);
    }

    [TestMethod]
    public async Task Trim_DropsOnlyRegionsWhoseChangesEndedBeforeTheBarrierBegan()
    {
        using var dir = new TempDir("activity");
        using ActivityLog log = ActivityLog.Open(Path.Combine(dir.Path, "activity.map"), BlockSize);
        log.Enter(1 << 6, 0, 100); // idle by the trim
        log.Leave(1 << 6, 0, 100);
        log.Enter(2 << 6, 0, 100); // still in flight during the whole trim
        log.Enter(3 << 6, 0, 100); // in flight when the barrier begins, ended during it
        log.EnterWholeFile(4 << 6);
        log.LeaveWholeFile(4 << 6);

        int dropped = await log.TrimAsync(() =>
        {
            log.Leave(3 << 6, 0, 100);
            log.Enter(4 << 6, 0, 10); // a new change during the barrier: not covered by it
            log.Leave(4 << 6, 0, 10);
            return Task.CompletedTask;
        });

        Assert.AreEqual(2, dropped, "the idle region and the whole-file one");
        Assert.AreEqual(3, log.Count);
        Assert.AreEqual(2, await log.TrimAsync(() => Task.CompletedTask), "the next trim drops the two that ended");
        log.Leave(2 << 6, 0, 100);
        Assert.AreEqual(1, await log.TrimAsync(() => Task.CompletedTask));
        Assert.AreEqual(0, log.Count);
    }

    [TestMethod]
    public void Reopen_ReturnsWhatTheLastRunLeft_AndTheBlocksEachFileMayHaveChanged()
    {
        using var dir = new TempDir("activity");
        string path = Path.Combine(dir.Path, "activity.map");
        using (ActivityLog log = ActivityLog.Open(path, BlockSize))
        {
            log.Enter(fileId: 130, offset: 65L << 20, length: 1);
            log.EnterWholeFile(fileId: 200);
        }
        using ActivityLog again = ActivityLog.Open(path, BlockSize);
        var regions = again.Recovered!.ToList();
        Assert.AreEqual(2, regions.Count);
        Location data = regions.Single(r => r.Block < ActivityLog.WholeFile);
        Assert.AreEqual(new Location(130 >> 6, 1), data);
        CollectionAssert.AreEqual(Enumerable.Range(128, 64).Select(i => (long)i).ToList(), ActivityLog.FilesOf(data).ToList());
        Assert.AreEqual((1024L, 1024L + 10), again.BlocksOf(data, (64L << 20) + (10 * BlockSize) + 1), "clipped to the file's length");
        Assert.IsNull(again.BlocksOf(data, 64L << 20), "a file that ends before the region holds nothing of it");
        Location whole = regions.Single(r => r.Block >= ActivityLog.WholeFile);
        CollectionAssert.AreEqual(new[] { 200L }, ActivityLog.FilesOf(whole).ToList(), "a whole-file entry names its one file");
        Assert.AreEqual((0L, 3L), again.BlocksOf(whole, (3 * BlockSize) + 1));

        again.Reset();
        Assert.AreEqual(0, again.Count);
        Assert.AreEqual(0, again.Recovered!.Count);
    }
}
