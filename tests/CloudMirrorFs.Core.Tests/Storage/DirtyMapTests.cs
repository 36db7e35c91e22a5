using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Tests.Storage;

[TestClass]
public sealed class DirtyMapTests
{
    [TestMethod]
    public void Set_ThenReopen_KeepsEveryLocation()
    {
        using var dir = new TempDir("dmap");
        string path = Path.Combine(dir.Path, "m.map");
        var rnd = new Random(7);
        var expected = new HashSet<Location>();
        using (var map = DirtyMap.Open(path))
        {
            for (int i = 0; i < 5000; i++)
            {
                var l = new Location(rnd.Next(1, 50), rnd.Next(0, 10_000));
                Assert.AreEqual(expected.Add(l), map.Set(l));
            }
            foreach (Location l in expected.Take(1000).ToList())
            {
                Assert.IsTrue(map.Clear(l));
                expected.Remove(l);
            }
        }
        using var again = DirtyMap.Open(path);
        CollectionAssert.AreEquivalent(expected.ToList(), again.Snapshot());
        Assert.AreEqual(expected.Count, again.Count);
        Assert.IsFalse(again.IsFull);
        Assert.IsNull(again.CorruptionReport);
    }

    [TestMethod]
    public void Set_WithoutClose_IsOnDiskForAnotherReader()
    {
        // What a SIGKILL leaves: the file as written so far, with no close. Copy it while the map is open.
        using var dir = new TempDir("dmap");
        string path = Path.Combine(dir.Path, "m.map");
        using var map = DirtyMap.Open(path);
        map.Set(new Location(3, 4));
        map.Set(new Location(3, 70));
        map.MarkNamespaceDirty();
        string copy = Path.Combine(dir.Path, "copy.map");
        File.Copy(path, copy);
        using var crashed = DirtyMap.Open(copy);
        CollectionAssert.AreEqual(new[] { new Location(3, 4), new Location(3, 70) }, crashed.Snapshot());
        Assert.IsTrue(crashed.NamespaceDirty);
    }

    [TestMethod]
    public void Open_DamagedRecord_ReportsFileAndOffsetAndTurnsFull()
    {
        using var dir = new TempDir("dmap");
        string path = Path.Combine(dir.Path, "m.map");
        using (var map = DirtyMap.Open(path))
        {
            for (int i = 0; i < 10; i++)
            {
                map.Set(new Location(1, i));
            }
        }
        byte[] bytes = File.ReadAllBytes(path);
        bytes[16 + 29 * 3 + 5] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        using var damaged = DirtyMap.Open(path);
        Assert.IsTrue(damaged.IsFull);
        StringAssert.Contains(damaged.CorruptionReport, path);
        StringAssert.Contains(damaged.CorruptionReport, $"offset {16 + 29 * 3}");
        Assert.IsTrue(damaged.Contains(new Location(99, 99)), "a full map covers every location");
    }

    [TestMethod]
    public void Open_TornTail_DropsOnlyThePartialRecord()
    {
        using var dir = new TempDir("dmap");
        string path = Path.Combine(dir.Path, "m.map");
        using (var map = DirtyMap.Open(path))
        {
            map.Set(new Location(1, 1));
            map.Set(new Location(1, 2));
        }
        using (var fs = new FileStream(path, FileMode.Append))
        {
            fs.Write(new byte[11]);
        }
        using var reopened = DirtyMap.Open(path);
        Assert.IsFalse(reopened.IsFull);
        Assert.AreEqual(2, reopened.Count);
    }

    [TestMethod]
    public void Set_SameLocationTwice_AppendsOnce()
    {
        using var dir = new TempDir("dmap");
        string path = Path.Combine(dir.Path, "m.map");
        using var map = DirtyMap.Open(path);
        map.Set(new Location(1, 1));
        long size = new FileInfo(path).Length;
        for (int i = 0; i < 100; i++)
        {
            Assert.IsFalse(map.Set(new Location(1, 1)));
        }
        Assert.AreEqual(size, new FileInfo(path).Length);
    }

    /// <summary>
    /// On a full disk: marks until an append fails. A tmpfs page holds 140 records, so the map's last page is then
    /// full, and the next append needs a new one.
    /// </summary>
    private static void FillLastPage(DirtyMap map) => Assert.ThrowsExactly<IOException>(() =>
    {
        for (long b = 100; ; b++)
        {
            map.Set(new Location(7, b));
        }
    });

    [TestMethod]
    public void Set_OnAFullDisk_Throws_KeepsTheMarkInMemory_AndWritesItOnceThereIsRoom()
    {
        using var disk = new CloudMirrorFs.Tests.Support.SmallDisk(1);
        string path = Path.Combine(disk.Path, "m.map");
        using (DirtyMap map = DirtyMap.Open(path))
        {
            string ballast = disk.Ballast();
            var loc = new Location(7, 3);
            FillLastPage(map);
            long setBefore = map.Count;
            var other = new Location(8, 1);
            Assert.ThrowsExactly<IOException>(() => map.Set(loc));
            Assert.ThrowsExactly<IOException>(() => map.Set(other));
            Assert.IsTrue(map.Contains(loc), "marked in memory all the same: this run still acts on it");
            Assert.AreEqual(setBefore + 2, map.Count);
            Assert.ThrowsExactly<IOException>(map.MarkNamespaceDirty);
            Assert.IsTrue(map.NamespaceDirty);
            Assert.ThrowsExactly<IOException>(map.Flush, "a barrier that cannot write them fails");
            File.Delete(ballast);
            Assert.IsTrue(map.Set(loc), "set again once there is room: appended, not taken for already logged");
            Assert.IsFalse(map.Set(loc));
            Assert.IsTrue(map.HasUnflushedMarks);
            map.Flush(); // writes the other two
        }
        using DirtyMap again = DirtyMap.Open(path);
        Assert.IsNull(again.CorruptionReport, "no torn record left in the middle of the log");
        Assert.IsTrue(again.Contains(new Location(7, 3)));
        Assert.IsTrue(again.Contains(new Location(8, 1)), "written by the flush");
        Assert.IsTrue(again.NamespaceDirty);
    }

    [TestMethod]
    public void SetRange_AppendsOnlyTheNewMarks_AndIsOnDiskForAnotherReaderWithoutClose()
    {
        using var dir = new TempDir("dmap");
        string path = Path.Combine(dir.Path, "m.map");
        using var map = DirtyMap.Open(path);
        Assert.IsTrue(map.Set(new Location(5, 2)));
        long size = new FileInfo(path).Length;
        Assert.AreEqual(3, map.SetRange(5, 0, 3), "blocks 0, 1 and 3: block 2 was marked already");
        Assert.AreEqual(size + 3 * 29, new FileInfo(path).Length, "one record per new mark, none for the old one");
        Assert.AreEqual(0, map.SetRange(5, 1, 3));
        Assert.AreEqual(0, map.SetRange(5, 3, 2), "an empty range");
        Assert.AreEqual(4, map.MarksAppended);
        const int many = 3 * DirtyMap.SetRangeChunk + 7; // a whole file's range: written in several pieces
        Assert.AreEqual(many, map.SetRange(6, 0, many - 1));
        Assert.AreEqual(size + (3 + many) * 29, new FileInfo(path).Length);
        string copy = Path.Combine(dir.Path, "copy.map");
        File.Copy(path, copy); // what a SIGKILL leaves
        using var crashed = DirtyMap.Open(copy);
        var expected = new List<Location> { new(5, 0), new(5, 1), new(5, 2), new(5, 3) };
        expected.AddRange(Enumerable.Range(0, many).Select(b => new Location(6, b)));
        CollectionAssert.AreEquivalent(expected, crashed.Snapshot().ToList());
        Assert.IsNull(crashed.CorruptionReport);
    }

    [TestMethod]
    public void SetRange_OnAFullDisk_Throws_KeepsTheMarksInMemory_AndWritesThemOnceThereIsRoom()
    {
        using var disk = new CloudMirrorFs.Tests.Support.SmallDisk(1);
        string path = Path.Combine(disk.Path, "m.map");
        using (DirtyMap map = DirtyMap.Open(path))
        {
            string ballast = disk.Ballast();
            FillLastPage(map);
            long before = map.Count;
            const long last = 2 * DirtyMap.SetRangeChunk + 100; // past one write's worth: the rest is marked all the same
            Assert.ThrowsExactly<IOException>(() => map.SetRange(9, 0, last));
            Assert.AreEqual(before + last + 1, map.Count, "marked in memory all the same: this run still acts on them");
            Assert.IsTrue(map.Contains(new Location(9, last)));
            File.Delete(ballast);
            Assert.AreEqual(last + 1, map.SetRange(9, 0, last), "written once there is room, not taken for already logged");
            Assert.AreEqual(0, map.SetRange(9, 0, last));
        }
        using DirtyMap again = DirtyMap.Open(path);
        Assert.IsNull(again.CorruptionReport, "no torn record left in the middle of the log");
        for (long b = 0; b <= 2 * DirtyMap.SetRangeChunk + 100; b++)
        {
            Assert.IsTrue(again.Contains(new Location(9, b)), $"block {b}");
        }
    }

    [TestMethod]
    public void ClearLater_IsInMemoryAtOnce_InTheFileOnlyAtCommit_EvenThroughACompaction()
    {
        using var dir = new TempDir("dmap");
        string path = Path.Combine(dir.Path, "m.map");
        var a = new Location(1, 1);
        var b = new Location(1, 2);
        using (DirtyMap map = DirtyMap.Open(path))
        {
            map.Set(a);
            map.Set(b);
            Assert.IsTrue(map.ClearLater(a));
            Assert.IsTrue(map.ClearLater(b));
            Assert.IsFalse(map.Contains(a), "the running volume sees it clear");
            Assert.AreEqual(0, map.Count);
            Assert.IsTrue(map.Set(b), "set again before the commit");
            map.ClearVolumeMarks(); // rewrites the file from memory
            using (DirtyMap copy = DirtyMap.Open(CopyOf(path)))
            {
                Assert.IsTrue(copy.Contains(a), "not committed: the file still names it, a compaction too");
                Assert.IsTrue(copy.Contains(b));
            }
            map.CommitClears();
            using (DirtyMap copy = DirtyMap.Open(CopyOf(path)))
            {
                Assert.IsFalse(copy.Contains(a), "committed");
                Assert.IsTrue(copy.Contains(b), "set again after its deferred clear: no clear written for it");
            }
        }

        static string CopyOf(string path)
        {
            string copy = path + $".copy{Guid.NewGuid():N}";
            File.Copy(path, copy);
            return copy;
        }
    }
    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Rewrite_WhenTheFolderFlushFails_TellsTheCaller_AndTheMapGoesOnWorking()
    {
        using var dir = new TempDir("dmap");
        string path = Path.Combine(dir.Path, "m.map");
        using (var map = DirtyMap.Open(path))
        {
            map.Set(new Location(1, 1));
            AtomicFile.InjectedFsyncErrno = 5; // EIO, at the folder flush after the rewritten log is renamed in
            try
            {
                Assert.ThrowsExactly<IOException>(map.ClearVolumeMarks);
            }
            finally
            {
                AtomicFile.InjectedFsyncErrno = 0;
            }
            Assert.IsTrue(map.Set(new Location(2, 7)));
            Assert.IsTrue(map.HasUnflushedMarks, "the folder's flush is owed: no mark counts as flushed");
            AtomicFile.InjectedFsyncErrno = 5;
            try
            {
                Assert.ThrowsExactly<IOException>(map.Flush, "a barrier flushes the folder first, and fails with it");
            }
            finally
            {
                AtomicFile.InjectedFsyncErrno = 0;
            }
            Assert.IsTrue(map.HasUnflushedMarks);
            map.Flush();
            Assert.IsFalse(map.HasUnflushedMarks);
        }
        using var again = DirtyMap.Open(path);
        CollectionAssert.AreEqual(new[] { new Location(1, 1), new Location(2, 7) }, again.Snapshot());
    }
}
