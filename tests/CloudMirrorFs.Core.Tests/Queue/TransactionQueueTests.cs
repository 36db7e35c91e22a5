using CloudMirrorFs.Options;
using CloudMirrorFs.Queue;
using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Tests.Queue;

[TestClass]
public sealed class TransactionQueueTests
{
    private const int Block = 64 * 1024;

    private static Transaction Write(long file, long offset, int length, int seed)
    {
        byte[] data = new byte[length];
        new Random(seed).NextBytes(data);
        return new Transaction { Kind = TransactionKind.Write, FileId = file, Path = $"f{file}", Offset = offset, Data = data };
    }

    private static QueueOptions Small(long memory = 1 << 20, long disk = 64 << 20) => new() { MemoryLimit = memory, DiskLimit = disk, SegmentSize = 4 << 20 };

    private static void AssertSame(Transaction expected, Transaction actual)
    {
        Assert.AreEqual(expected.Kind, actual.Kind);
        Assert.AreEqual(expected.FileId, actual.FileId);
        Assert.AreEqual(expected.Path, actual.Path);
        Assert.AreEqual(expected.Path2, actual.Path2);
        Assert.AreEqual(expected.Offset, actual.Offset);
        Assert.AreEqual(expected.Length, actual.Length);
        CollectionAssert.AreEqual(expected.Data.ToArray(), actual.Data.ToArray());
    }

    [TestMethod]
    public void PendingFor_AnswersWhatReadingEverythingAnswers_ThroughSpills_Commits_ReleasesAndReopens()
    {
        using var dir = new TempDir("q");
        var rng = new Random(31);
        var options = Small(memory: 256 << 10);
        var q = TransactionQueue.Open(dir.Path, options, Block, ["a", "b"]);
        try
        {
            for (int step = 0; step < 3000; step++)
            {
                long file = rng.Next(1, 12);
                int op = rng.Next(100);
                if (op < 60)
                {
                    q.TryAppend(Write(file, rng.Next(1 << 20), rng.Next(1, 40_000), step), out _);
                }
                else if (op < 66)
                {
                    q.TryAppend(new Transaction { Kind = TransactionKind.Rename, FileId = file, Path = $"f{file}", Path2 = $"g{step}" }, out _);
                }
                else if (op < 72)
                {
                    q.TryAppend(new Transaction { Kind = TransactionKind.ZeroRange, FileId = file, Path = $"f{file}", Offset = rng.Next(1 << 20), Length = rng.Next(1, 1 << 20) }, out _);
                }
                else if (op < 78)
                {
                    q.TryAppend(new Transaction { Kind = TransactionKind.SetLength, FileId = file, Path = $"f{file}", Length = rng.Next(1 << 20) }, out _);
                }
                else if (op < 94)
                {
                    string cursor = rng.Next(2) == 0 ? "a" : "b";
                    long head = q.HeadOf(cursor);
                    q.Commit(cursor, head + rng.Next(1, (int)Math.Max(2, (q.Tail - head) / 2 + 1)), 0);
                }
                else if (op < 96)
                {
                    using (var missed = DirtyMap.Open(Path.Combine(dir.Path, $"missed{step}.map")))
                    {
                        q.Release("b", missed);
                    }
                    q.Reattach("b");
                }
                else if (op < 97)
                {
                    q.Dispose();
                    q = TransactionQueue.Open(dir.Path, options, Block, ["a", "b"]);
                }
                if (step % 25 == 0)
                {
                    foreach (string cursor in new[] { "a", "b" })
                    {
                        // The oracle: every record the cursor has not passed, read back as a replicator reads them.
                        using QueueBatch all = q.Read(cursor, 0, int.MaxValue, long.MaxValue);
                        for (long f = 1; f < 12; f++)
                        {
                            List<Transaction> expected = [.. all.Where(t => t.FileId == f || t.Kind == TransactionKind.Rename)];
                            IReadOnlyList<Transaction> actual = q.PendingFor(cursor, f);
                            CollectionAssert.AreEqual(expected.Select(t => t.Seq).ToList(), actual.Select(t => t.Seq).ToList(), $"step {step}, cursor {cursor}, file {f}");
                            for (int i = 0; i < expected.Count; i++)
                            {
                                AssertSame(expected[i], actual[i]);
                            }
                        }
                        // Several files at once (a listing's children): what a scan for all of them finds.
                        var ids = Enumerable.Range(1, 11).Where(_ => rng.Next(3) == 0).Select(i => (long)i).ToHashSet();
                        CollectionAssert.AreEqual(
                            all.Where(t => ids.Contains(t.FileId) || t.Kind == TransactionKind.Rename).Select(t => t.Seq).ToList(),
                            q.PendingFor(cursor, ids).Select(t => t.Seq).ToList(), $"step {step}, cursor {cursor}, files {string.Join(",", ids)}");
                    }
                }
            }
        }
        finally
        {
            q.Dispose();
        }
    }

    [TestMethod]
    public void PendingFor_AFileTheBacklogDoesNotTouch_ReadsNoRecord()
    {
        // A degraded read of a file the backlog does not touch used to read every record held, spilled ones from disk.
        using var dir = new TempDir("q");
        using var q = TransactionQueue.Open(dir.Path, Small(memory: 64 << 10), Block, ["r"]);
        for (int i = 0; i < 400; i++)
        {
            q.TryAppend(Write(1, i * 65536L, 65536, i), out _);
        }
        q.TryAppend(new Transaction { Kind = TransactionKind.Rename, FileId = 3, Path = "d", Path2 = "e" }, out _);
        q.TryAppend(Write(2, 0, 100, 1), out long last);
        for (int i = 0; i < 400; i++)
        {
            q.TryAppend(Write(1, i * 65536L, 65536, i), out _);
        }

        long before = q.RecordsVisited;
        CollectionAssert.AreEqual(new[] { last - 1 }, q.PendingFor("r", 7).Select(t => t.Seq).ToList(), "an untouched file: the rename alone");
        Assert.AreEqual(before, q.RecordsVisited, "no record read for a file the queue holds nothing for");
        CollectionAssert.AreEqual(new[] { last - 1, last }, q.PendingFor("r", 2).Select(t => t.Seq).ToList());
        Assert.IsTrue(q.RecordsVisited - before < 50, $"{q.RecordsVisited - before} records read to find file 2's one write among 800");
        before = q.RecordsVisited;
        CollectionAssert.AreEqual(new[] { last - 1, last }, q.PendingFor("r", new HashSet<long> { 2, 7, 8, 9 }).Select(t => t.Seq).ToList(), "a listing's children");
        Assert.IsTrue(q.RecordsVisited - before < 50, $"{q.RecordsVisited - before} records read for a listing whose one changed child has one write");
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void BarrierFor_ASmallWriteWhileSpilling_LeavesAnotherFilesSpilledRecordsToTheOs_ANameChangeDoesNot()
    {
        // A program fsyncing small writes beside a large copy that spills: a log is flushed up to its end, so the
        // barrier flushed the copy's spilled bytes first (fsync p50 beside a 2 GiB dd through the mount, remote on a
        // tmpfs: 1.05-1.28 ms with the whole segment, 0.59-0.86 ms without). The small write is held in memory while
        // the queue spills, covered by its intent bit, and its file's barrier leaves the segment to the OS.
        using var dir = new TempDir("q", CloudMirrorFs.Tests.Support.PageCache.DiskFolder);
        var options = new QueueOptions { MemoryLimit = 1 << 20, DiskLimit = 256 << 20, SegmentSize = 64 << 20 };
        using var q = TransactionQueue.Open(dir.Path, options, Block, ["r"]);
        for (int i = 0; i < 6; i++)
        {
            // 768 KiB held in memory, under seven eighths of the limit: past it, the queue spills (and stays spilling
            // while more than half the limit is held)
            q.MarkIntent(1, (32L << 20) + (i * (128L << 10)), 128 << 10);
            Assert.IsTrue(q.TryAppend(Write(1, (32L << 20) + (i * (128L << 10)), 128 << 10, 100 + i), out _));
        }
        for (int i = 0; i < 16; i++)
        {
            q.MarkIntent(1, i * (1L << 20), 1 << 20);
            Assert.IsTrue(q.TryAppend(Write(1, i * (1L << 20), 1 << 20, i), out _));
        }
        q.MarkIntent(2, 0, 4096);
        Transaction small = Write(2, 0, 4096, 99);
        Assert.IsTrue(q.TryAppend(small, out long smallSeq));
        string segment = Directory.GetFiles(dir.Path, "seg-*.cmq").Single();
        string intent = Path.Combine(dir.Path, "intent.map");
        long dirty = CloudMirrorFs.Tests.Support.PageCache.DirtyPages(segment);
        Assert.IsTrue(dirty >= 2048, $"the premise: the large file's records spilled, and are in the cache only ({dirty} dirty pages)");

        Assert.IsTrue(q.SegmentNeededFor(1), "the large file's barrier needs its spilled records");
        Assert.IsFalse(q.SegmentNeededFor(2), "the small write was held in memory, covered by its intent bit");
        Assert.IsFalse(q.BarrierFor(2), "so its file's barrier leaves the segment");
        Assert.IsTrue(CloudMirrorFs.Tests.Support.PageCache.DirtyPages(segment) > dirty / 2, "the spilled records are left to the OS");
        Assert.AreEqual(0, CloudMirrorFs.Tests.Support.PageCache.DirtyPages(intent), "the intent bits are on the disk");
        using (QueueBatch all = q.Read("r", 0, int.MaxValue, long.MaxValue))
        {
            Assert.AreEqual(23, all.Count, "the replicator reads the memory record after spilled ones, in order");
            AssertSame(small, all[22]);
            Assert.AreEqual(smallSeq, all[22].Seq);
            CollectionAssert.AreEqual(Enumerable.Range(1, 23).Select(i => (long)i).ToList(), all.Select(t => t.Seq).ToList());
        }

        // Another file's new intent bits are not this file's to flush either; its own are.
        q.MarkIntent(1, 40L << 20, 1 << 20);
        Assert.IsTrue(q.TryAppend(Write(1, 40L << 20, 1 << 20, 77), out _));
        Assert.IsTrue(CloudMirrorFs.Tests.Support.PageCache.DirtyPages(intent) > 0, "the premise: the large file's new intent bit is in the cache only");
        Assert.IsFalse(q.HasUnflushedFor(2), "nothing of file 2's is unflushed");
        Assert.IsFalse(q.BarrierFor(2));
        Assert.IsTrue(CloudMirrorFs.Tests.Support.PageCache.DirtyPages(intent) > 0, "so its barrier left the intent map alone");
        q.MarkIntent(2, 1 << 20, 4096);
        Assert.IsTrue(q.TryAppend(Write(2, 1 << 20, 4096, 78), out _));
        Assert.IsTrue(q.IntentNeededFor(2));
        Assert.IsFalse(q.BarrierFor(2));
        Assert.AreEqual(0, CloudMirrorFs.Tests.Support.PageCache.DirtyPages(intent), "file 2's new bit: the intent map is flushed");
        Assert.IsFalse(q.IntentNeededFor(2));

        // A name change sits in the segment, after the spilled records: every file's barrier needs it.
        Assert.IsTrue(q.TryAppend(new Transaction { Kind = TransactionKind.Rename, FileId = 3, Path = "d", Path2 = "e" }, out _));
        Assert.IsTrue(q.SegmentNeededFor(2));
        Assert.IsTrue(q.BarrierFor(2));
        Assert.AreEqual(0, CloudMirrorFs.Tests.Support.PageCache.DirtyPages(segment), "the whole segment is on the disk");
        Assert.IsFalse(q.SegmentNeededFor(1), "and covers every file's records");
    }

    [TestMethod]
    public void Append_PastMemoryLimit_SpillsAndReadsBackInOrder()
    {
        using var dir = new TempDir("q");
        using var q = TransactionQueue.Open(dir.Path, Small(), Block, ["r"]);
        var all = new List<Transaction>();
        for (int i = 0; i < 200; i++)
        {
            Transaction t = i % 10 == 0
                ? new Transaction { Kind = TransactionKind.Rename, FileId = i, Path = $"a{i}", Path2 = $"b{i}" }
                : Write(i % 7, i * 4096L, 32 * 1024, i);
            Assert.IsTrue(q.TryAppend(t, out long seq));
            Assert.AreEqual(i + 1, seq);
            all.Add(t);
            Assert.IsTrue(q.MemoryBytes <= (1 << 20), $"memory {q.MemoryBytes} over the limit");
        }
        Assert.IsTrue(q.DiskBytes > 4 << 20, "records past the memory limit went to segment files");
        var read = new List<Transaction>();
        long after = 0;
        while (true)
        {
            IReadOnlyList<Transaction> batch = q.Read("r", after, 17, 1 << 20);
            if (batch.Count == 0)
            {
                break;
            }
            read.AddRange(batch);
            after = batch[^1].Seq;
        }
        Assert.AreEqual(all.Count, read.Count);
        for (int i = 0; i < all.Count; i++)
        {
            Assert.AreEqual(i + 1, read[i].Seq);
            AssertSame(all[i], read[i]);
        }
        QueueCursorInfo info = q.CursorInfo("r");
        Assert.AreEqual(200, info.Count);
        Assert.AreEqual(all.Sum(t => (long)t.Data.Length), info.Bytes);
    }

    [TestMethod]
    public void Commit_AllCursors_ReleasesMemoryAndSegments()
    {
        using var dir = new TempDir("q");
        using var q = TransactionQueue.Open(dir.Path, Small(), Block, ["a", "b"]);
        for (int i = 0; i < 100; i++)
        {
            Assert.IsTrue(q.TryAppend(Write(1, i * 65536L, 65536, i), out _));
        }
        q.Commit("a", 100, 0);
        Assert.IsTrue(q.DiskBytes > 0, "b still needs the records");
        q.Commit("b", 100, 0);
        Assert.AreEqual(0, q.MemoryBytes);
        Assert.AreEqual(0, Directory.GetFiles(dir.Path, "seg-*").Length, "drained segments are deleted");
        Assert.AreEqual(0, q.CursorInfo("a").Count);
    }

    [TestMethod]
    public void Dispose_ThenOpen_RestoresInMemoryRecords()
    {
        using var dir = new TempDir("q");
        var all = new List<Transaction>();
        using (var q = TransactionQueue.Open(dir.Path, Small(memory: 8 << 20), Block, ["r"]))
        {
            for (int i = 0; i < 50; i++)
            {
                Transaction t = i % 5 == 0 ? new Transaction { Kind = TransactionKind.CreateFile, FileId = 100 + i, Path = $"n{i}", Mode = UnixFileMode.UserRead } : Write(2, i * 100L, 1000, i);
                q.TryAppend(t, out _);
                all.Add(t);
            }
            q.Commit("r", 10, 0);
        }
        using var again = TransactionQueue.Open(dir.Path, Small(memory: 8 << 20), Block, ["r"]);
        Assert.IsTrue(again.Recovery.CleanShutdown);
        Assert.AreEqual(0, again.Recovery.LostLocations.Count);
        IReadOnlyList<Transaction> read = again.Read("r", 0, 1000, long.MaxValue);
        Assert.AreEqual(40, read.Count);
        for (int i = 0; i < 40; i++)
        {
            Assert.AreEqual(11 + i, read[i].Seq);
            AssertSame(all[10 + i], read[i]);
        }
        Assert.IsTrue(again.TryAppend(Write(1, 0, 10, 1), out long next));
        Assert.AreEqual(51, next, "sequence numbers continue after a restart");
    }

    [TestMethod]
    [DataRow("missing")]
    [DataRow("damaged")]
    public void Open_CursorFileLost_EveryCursorReplaysAllRecordsKept_NothingSkipped(string how)
    {
        // Without its cursor file the queue does not know how far each remote got. It used to start every cursor at
        // the tail (missing file: the records it kept were never sent, with the facets still Synchronised) or to
        // refuse to open (damaged file: the drive would not mount). Sending a record twice is harmless; skipping it
        // is not.
        using var dir = new TempDir("q");
        var all = new List<Transaction>();
        using (var q = TransactionQueue.Open(dir.Path, Small(memory: 64 << 10), Block, ["a", "b"]))
        {
            for (int i = 0; i < 60; i++)
            {
                Transaction t = Write(3, i * 4096L, 4096, i);
                q.TryAppend(t, out _);
                all.Add(t);
            }
            q.Commit("a", 30, 0);
            q.Commit("b", 20, 0);
        }
        string cursors = Path.Combine(dir.Path, "cursors.json");
        if (how == "missing")
        {
            File.Delete(cursors);
        }
        else
        {
            File.WriteAllText(cursors, "{\"NextSeq\": 61, \"Curs");
        }
        using var again = TransactionQueue.Open(dir.Path, Small(memory: 64 << 10), Block, ["a", "b"]);
        StringAssert.Contains(again.Recovery.CursorsLost ?? "", "cursors.json");
        foreach (string name in new[] { "a", "b" })
        {
            IReadOnlyList<Transaction> read = again.Read(name, again.CursorInfo(name).Head, 1000, long.MaxValue);
            Assert.IsTrue(read.Count >= 40, $"{name}: every record after its real head is sent again ({read.Count})");
            CollectionAssert.IsSubsetOf(all.Skip(20).Select(t => t.Seq).ToList(), read.Select(t => t.Seq).ToList(), name);
            foreach (Transaction t in read)
            {
                AssertSame(all[(int)t.Seq - 1], t);
            }
        }
        Assert.IsTrue(again.TryAppend(Write(1, 0, 10, 1), out long next));
        Assert.AreEqual(61, next, "sequence numbers go on after the records kept");
    }

    [TestMethod]
    public void Open_SegmentFileDeleted_ReportedAsDamage_NotSkippedInSilence()
    {
        using var dir = new TempDir("q");
        var options = new QueueOptions { MemoryLimit = 0, DiskLimit = 64 << 20, SegmentSize = 64 << 10 };
        using (var q = TransactionQueue.Open(dir.Path, options, Block, ["r"]))
        {
            for (int i = 0; i < 60; i++)
            {
                q.TryAppend(Write(3, i * 4096L, 4096, i), out _);
            }
            q.Commit("r", 5, 0);
        }
        string[] segments = [.. Directory.GetFiles(dir.Path, "seg-*.cmq").Order(StringComparer.Ordinal)];
        Assert.IsTrue(segments.Length >= 3, string.Join(", ", segments));
        File.Delete(segments[1]);
        using var again = TransactionQueue.Open(dir.Path, options, Block, ["r"]);
        Assert.AreEqual(1, again.Recovery.Corruptions.Count, string.Join("\n", again.Recovery.Corruptions));
        StringAssert.Contains(again.Recovery.Corruptions[0].Problem, "are missing");
        Assert.IsFalse(again.Recovery.Corruptions[0].TornTail);

        using var intact = new TempDir("q2");
        using (var q = TransactionQueue.Open(intact.Path, options, Block, ["r"]))
        {
            for (int i = 0; i < 60; i++)
            {
                q.TryAppend(Write(3, i * 4096L, 4096, i), out _);
            }
            q.Commit("r", 5, 0);
        }
        using var whole = TransactionQueue.Open(intact.Path, options, Block, ["r"]);
        Assert.AreEqual(0, whole.Recovery.Corruptions.Count, "a queue with every segment reports nothing");
        Assert.AreEqual(55, whole.CursorInfo("r").Count);
    }

    [TestMethod]
    public void Crash_InMemoryRecordsLost_IntentMapNamesTheirLocations()
    {
        using var dir = new TempDir("q");
        string live = dir.Sub("live");
        string crashed = dir.Sub("crashed");
        var q = TransactionQueue.Open(live, Small(memory: 64 << 20), Block, ["r"]);
        var expected = new HashSet<Location>();
        for (int i = 0; i < 30; i++)
        {
            Transaction t = Write(i % 3 + 1, i * 50_000L, 70_000, i);
            q.TryAppend(t, out _);
            var (first, last) = t.Blocks(Block);
            for (long b = first; b <= last; b++)
            {
                expected.Add(new Location(t.FileId, b));
            }
        }
        q.TryAppend(new Transaction { Kind = TransactionKind.DeleteFile, FileId = 9, Path = "gone" }, out _);
        // The crash: the files as they are now, without any close.
        foreach (string f in Directory.GetFiles(live))
        {
            File.Copy(f, Path.Combine(crashed, Path.GetFileName(f)));
        }
        using var after = TransactionQueue.Open(crashed, Small(memory: 64 << 20), Block, ["r"]);
        Assert.IsFalse(after.Recovery.CleanShutdown);
        CollectionAssert.AreEquivalent(expected.ToList(), after.Recovery.LostLocations.ToList());
        IReadOnlyList<Transaction> replayed = after.Read("r", 0, 100, long.MaxValue);
        Assert.AreEqual(1, replayed.Count, "namespace records are on disk at once");
        Assert.AreEqual(TransactionKind.DeleteFile, replayed[0].Kind);
        Assert.AreEqual(31, replayed[0].Seq);
        q.Dispose();
    }

    /// <summary>
    /// Records skipped for a cursor (older than what its facet holds) stay skipped after a crash, though another cursor
    /// still holds them on disk: a commit's head is saved only now and then, and a crash brought them back to be sent
    /// over newer bytes.
    /// </summary>
    [TestMethod]
    public void Skip_IsSavedAtOnce_ACrashDoesNotBringTheRecordsBack()
    {
        using var dir = new TempDir("q");
        string live = dir.Sub("live");
        string crashed = dir.Sub("crashed");
        var q = TransactionQueue.Open(live, Small(memory: 0), Block, ["ahead", "behind"]);
        for (int i = 0; i < 10; i++)
        {
            q.TryAppend(Write(1, i * 1000L, 1000, i), out _);
        }
        q.Skip("ahead", 10);
        foreach (string f in Directory.GetFiles(live))
        {
            File.Copy(f, Path.Combine(crashed, Path.GetFileName(f)));
        }
        using var after = TransactionQueue.Open(crashed, Small(memory: 0), Block, ["ahead", "behind"]);
        Assert.AreEqual(0, after.Read("ahead", after.HeadOf("ahead"), 100, long.MaxValue).Count, "nothing to send to the cursor that skipped");
        Assert.AreEqual(10, after.CursorInfo("behind").Count, "the other cursor keeps its records");
        q.Dispose();
    }

    [TestMethod]
    public void Open_DamagedSegment_ReportsFileAndOffset_KeepsRecordsBefore()
    {
        using var dir = new TempDir("q");
        long damagedOffset;
        using (var q = TransactionQueue.Open(dir.Path, Small(memory: 0), Block, ["r"]))
        {
            for (int i = 0; i < 20; i++)
            {
                q.TryAppend(Write(1, i * 1000L, 1000, i), out _);
            }
        }
        string seg = Directory.GetFiles(dir.Path, "seg-*.cmq").Single();
        int recordSize = 80 + 2 + 1000 + 4;
        damagedOffset = 24 + 7L * recordSize;
        byte[] bytes = File.ReadAllBytes(seg);
        bytes[damagedOffset + 300] ^= 0xFF;
        File.WriteAllBytes(seg, bytes);

        using var again = TransactionQueue.Open(dir.Path, Small(memory: 0), Block, ["r"]);
        QueueCorruption c = again.Recovery.Corruptions.Single();
        Assert.AreEqual(seg, c.File);
        Assert.AreEqual(damagedOffset, c.Offset);
        Assert.AreEqual(7, c.LastGoodSeq);
        Assert.IsFalse(c.TornTail);
        StringAssert.Contains(c.ToString(), seg);
        StringAssert.Contains(c.ToString(), $"offset {damagedOffset}");
        IReadOnlyList<Transaction> read = again.Read("r", 0, 100, long.MaxValue);
        Assert.AreEqual(7, read.Count);
    }

    [TestMethod]
    public void Open_TornLastRecord_IsReportedAsTornTail()
    {
        using var dir = new TempDir("q");
        string live = dir.Sub("live");
        var q = TransactionQueue.Open(live, Small(memory: 0), Block, ["r"]);
        for (int i = 0; i < 5; i++)
        {
            q.TryAppend(Write(1, i * 1000L, 1000, i), out _);
        }
        string seg = Directory.GetFiles(live, "seg-*.cmq").Single();
        string crashed = dir.Sub("crashed");
        foreach (string f in Directory.GetFiles(live))
        {
            File.Copy(f, Path.Combine(crashed, Path.GetFileName(f)));
        }
        string crashedSeg = Path.Combine(crashed, Path.GetFileName(seg));
        using (var fs = new FileStream(crashedSeg, FileMode.Open))
        {
            fs.SetLength(fs.Length - 300);
        }
        using var after = TransactionQueue.Open(crashed, Small(memory: 0), Block, ["r"]);
        QueueCorruption c = after.Recovery.Corruptions.Single();
        Assert.IsTrue(c.TornTail);
        Assert.AreEqual(4, c.LastGoodSeq);
        Assert.IsTrue(after.Recovery.LostLocations.Contains(new Location(1, 0)), "the torn record's location is in the intent map");
        q.Dispose();
    }

    [TestMethod]
    public void Release_MovesMissedLocationsToTheFacetsMap()
    {
        using var dir = new TempDir("q");
        using var q = TransactionQueue.Open(dir.Path, Small(), Block, ["r", "s"]);
        q.TryAppend(Write(5, 0, 100, 1), out _);
        q.TryAppend(Write(5, Block * 3L, 100, 2), out _);
        q.Commit("r", 1, 100);
        using var missed = DirtyMap.Open(Path.Combine(dir.Path, "missed.map"));
        q.Release("r", missed);
        CollectionAssert.AreEqual(new[] { new Location(5, 3) }, missed.Snapshot(), "only what r had not committed");
        Assert.IsTrue(missed.NamespaceDirty);
        Assert.IsFalse(q.CursorInfo("r").Active);
        Assert.AreEqual(2, q.CursorInfo("s").Count, "the other facet keeps its entries");
    }

    [TestMethod]
    public void Read_BatchKeepsItsBytes_WhenTheCursorIsReleasedAndTheMemoryReused()
    {
        // 256 KiB of memory: 64 KiB slabs. Eight 8 KiB records fill the first slab; a reader holds them as a batch
        // while the queue releases its cursor (unsync overflow) and goes on appending, recycling every freed slab.
        using var dir = new TempDir("q");
        using var q = TransactionQueue.Open(dir.Path, Small(memory: 256 << 10), Block, ["r"]);
        var expected = new List<byte[]>();
        for (int i = 0; i < 8; i++)
        {
            Transaction t = Write(1, i * 8192L, 8192, i);
            expected.Add(t.Data.ToArray());
            Assert.IsTrue(q.TryAppend(t, out _));
        }
        using QueueBatch batch = q.Read("r", 0, 100, long.MaxValue);
        Assert.AreEqual(8, batch.Count);
        using var missed = DirtyMap.Open(Path.Combine(dir.Path, "missed.map"));
        q.Release("r", missed);
        q.Reattach("r");
        for (int i = 0; i < 64; i++)
        {
            Transaction t = Write(2, i * 8192L, 8192, 1000 + i);
            Assert.IsTrue(q.TryAppend(t, out long seq));
            q.Commit("r", seq, 8192);
        }
        Assert.AreEqual(0, q.MemoryBytes, "everything appended since was committed and released");
        for (int i = 0; i < 8; i++)
        {
            CollectionAssert.AreEqual(expected[i], batch[i].Data.ToArray(), $"record {i} of the batch changed under its reader");
        }
    }

    [TestMethod]
    public void Read_SpilledRecords_ReadBackIntoReusedMemory_HeldBatchesKeepTheirBytes()
    {
        // 1 MiB of memory (256 KiB slabs) and 48 MiB of 32 KiB writes: nearly all spilled. Two remotes read them back at
        // their own pace (batches of 16 and of 23 records, taken in turn) and dispose each batch once done; every 16th
        // batch of the first is held to the end, as a facet keeps bytes until its commit lands. Reading back must reuse
        // the memory of disposed batches (not a new array per record, which costs a page fault per page and full
        // collections on a large backlog), never the memory of a batch still held, and go on where each cursor's last
        // batch stopped instead of stepping again over what it has.
        using var dir = new TempDir("q");
        using var q = TransactionQueue.Open(dir.Path, Small(memory: 1 << 20, disk: 128 << 20), Block, ["r", "s"]);
        const int records = 1536, size = 32 * 1024;
        var expected = new List<byte[]>();
        for (int i = 0; i < records; i++)
        {
            Transaction t = Write(1 + (i % 5), i * (long)size, size, i);
            expected.Add(t.Data.ToArray());
            Assert.IsTrue(q.TryAppend(t, out _));
        }
        Assert.IsTrue(q.DiskBytes > 40L << 20, "the backlog spilled");
        var held = new List<QueueBatch>();
        var after = new Dictionary<string, long> { ["r"] = 0, ["s"] = 0 };
        var batches = new Dictionary<string, int> { ["r"] = 0, ["s"] = 0 };
        long allocated = 0; // by the reads alone
        long headersBefore = q.HeadersReadBack;
        while (after["r"] < records || after["s"] < records)
        {
            foreach (string cursor in new[] { "r", "s" })
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                QueueBatch batch = q.Read(cursor, after[cursor], cursor == "r" ? 16 : 23, long.MaxValue);
                allocated += GC.GetAllocatedBytesForCurrentThread() - before;
                if (batch.Count == 0)
                {
                    batch.Dispose();
                    continue;
                }
                foreach (Transaction t in batch)
                {
                    Assert.AreEqual(after[cursor] + 1, t.Seq, $"cursor {cursor}: records in order, none skipped");
                    Assert.IsTrue(t.Data.Span.SequenceEqual(expected[(int)t.Seq - 1]), $"record {t.Seq} read back for {cursor}");
                    after[cursor] = t.Seq;
                }
                if (cursor == "r" && batches[cursor] % 16 == 0)
                {
                    held.Add(batch);
                }
                else
                {
                    batch.Dispose();
                }
                batches[cursor]++;
            }
        }
        foreach (QueueBatch batch in held)
        {
            foreach (Transaction t in batch)
            {
                Assert.IsTrue(t.Data.Span.SequenceEqual(expected[(int)t.Seq - 1]), $"record {t.Seq} changed while its batch was held");
            }
            batch.Dispose();
        }
        // Each batch goes on where its cursor's last one stopped: one header per record per cursor, plus the one record
        // each batch found it had no room for, not every record before it in its segment again.
        long headers = q.HeadersReadBack - headersBefore;
        Assert.IsTrue(headers <= (2 * records) + batches["r"] + batches["s"], $"{headers} record headers read for {records} records, two cursors, {batches["r"] + batches["s"]} batches");
        // The slabs the held batches pin and a few more, and each read's file buffer: about 20 MiB. A new array per
        // spilled record would be 96 MiB.
        long data = 2L * records * size;
        Assert.IsTrue(allocated < data / 3, $"{allocated >> 20} MiB allocated to read back {data >> 20} MiB");
    }

    [TestMethod]
    public void Open_LargeSpilledBacklog_ChecksEveryRecordInReusedMemory_AndReadsThemAllBack()
    {
        // 48 MiB of 32 KiB writes past 1 MiB of memory, then a reopen: the open reads every segment to check and index
        // its records, keeping none of their data, so it must not take an array per record (a page fault per page and
        // full collections on a large backlog, before the drive can mount). Then every record reads back intact.
        using var dir = new TempDir("q");
        const int records = 1536, size = 32 * 1024;
        var expected = new List<byte[]>();
        using (var q = TransactionQueue.Open(dir.Path, Small(memory: 1 << 20, disk: 128 << 20), Block, ["r"]))
        {
            for (int i = 0; i < records; i++)
            {
                Transaction t = Write(1 + (i % 5), i * (long)size, size, i);
                expected.Add(t.Data.ToArray());
                Assert.IsTrue(q.TryAppend(t, out _));
            }
            Assert.IsTrue(q.DiskBytes > 40L << 20, "the backlog spilled");
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        using var reopened = TransactionQueue.Open(dir.Path, Small(memory: 1 << 20, disk: 128 << 20), Block, ["r"]);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // The records held in memory at the close come back from the checkpoint (up to 1 MiB), the slabs and each
        // segment's file buffer add a few MiB; an array per spilled record would add the whole 48 MiB.
        long data = (long)records * size;
        Assert.IsTrue(allocated < data / 4, $"{allocated >> 20} MiB allocated to open a queue holding {data >> 20} MiB");
        Assert.AreEqual(records, reopened.CursorInfo("r").Count);
        long after = 0;
        while (true)
        {
            using QueueBatch batch = reopened.Read("r", after, 100, long.MaxValue);
            if (batch.Count == 0)
            {
                break;
            }
            foreach (Transaction t in batch)
            {
                Assert.IsTrue(t.Data.Span.SequenceEqual(expected[(int)t.Seq - 1]), $"record {t.Seq} after the reopen");
                after = t.Seq;
            }
        }
        Assert.AreEqual(records, after);
    }

    [TestMethod]
    public void Read_InMemoryRecords_EachBatchStartsAfterWhatTheReaderHas()
    {
        // 3,000 records held in memory, read in batches of 100: each batch starts at the record after the reader's
        // position (the run's records are in sequence order), not at the run's first one. The walk is done under the
        // lock writers append under, so walking up to the position would hold them for a whole run per batch.
        using var dir = new TempDir("q");
        using var q = TransactionQueue.Open(dir.Path, Small(memory: 64 << 20), Block, ["r"]);
        for (int i = 0; i < 3000; i++)
        {
            Assert.IsTrue(q.TryAppend(Write(1 + (i % 3), i * 1024L, 1024, i), out _));
        }
        Assert.AreEqual(0, q.DiskBytes, "nothing spilled");
        long before = q.RecordsVisited;
        long after = 0;
        int batches = 0;
        while (true)
        {
            using QueueBatch batch = q.Read("r", after, 100, long.MaxValue);
            if (batch.Count == 0)
            {
                break;
            }
            Assert.AreEqual(after + 1, batch[0].Seq, "the batch starts right after the reader's position");
            after = batch[^1].Seq;
            batches++;
        }
        Assert.AreEqual(3000, after);
        long visited = q.RecordsVisited - before;
        Assert.IsTrue(visited <= 3000 + batches, $"{visited} records visited to read 3,000 in {batches} batches");
    }

    [TestMethod]
    public void TryAppend_DiskLimitReached_ReturnsFalse()
    {
        using var dir = new TempDir("q");
        using var q = TransactionQueue.Open(dir.Path, new QueueOptions { MemoryLimit = 0, DiskLimit = 100_000, SegmentSize = 1 << 20 }, Block, ["r"]);
        int accepted = 0;
        while (q.TryAppend(Write(1, accepted * 10_000L, 10_000, accepted), out _))
        {
            accepted++;
            Assert.IsTrue(accepted < 100);
        }
        Assert.AreEqual(9, accepted);
        Assert.IsTrue(q.DiskBytes <= 100_000);
    }

    [TestMethod]
    public void CreateSymlink_Record_CarriesItsTargetInThePath2Field_ThroughASegmentAndAReopen()
    {
        using var dir = new TempDir("q");
        string longest = new string('t', 4095);
        var links = new[]
        {
            new Transaction { Kind = TransactionKind.CreateSymlink, FileId = 5, Path = "d/l", Path2 = "../\u00e9/target" },
            new Transaction { Kind = TransactionKind.CreateSymlink, FileId = 6, Path = "abs", Path2 = "/etc" },
            new Transaction { Kind = TransactionKind.CreateSymlink, FileId = 7, Path = "long", Path2 = longest },
        };
        using (var q = TransactionQueue.Open(dir.Path, Small(), Block, ["r"]))
        {
            q.TryAppend(Write(1, 0, 1000, 1), out _);
            foreach (Transaction t in links)
            {
                Assert.IsTrue(q.TryAppend(t, out _));
            }
            Assert.AreEqual("#2 symlink d/l -> ../\u00e9/target", q.Read("r", 1, 1, long.MaxValue)[0].ToString());
        }
        using var again = TransactionQueue.Open(dir.Path, Small(), Block, ["r"]);
        IReadOnlyList<Transaction> read = again.Read("r", 0, 100, long.MaxValue);
        Assert.AreEqual(4, read.Count);
        for (int i = 0; i < links.Length; i++)
        {
            AssertSame(links[i], read[i + 1]);
            Assert.AreEqual(i + 2, read[i + 1].Seq);
        }
        Assert.AreEqual(0, again.Recovery.Corruptions.Count);
    }
}
