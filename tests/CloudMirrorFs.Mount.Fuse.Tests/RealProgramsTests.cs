using System.Text;

namespace CloudMirrorFs.Mount.Tests;

/// <summary>Real programs, unchanged, on a real mount: git, sqlite3 in WAL mode (shared mmap), fio with verify, dbench.</summary>
[TestClass]
public sealed class RealProgramsTests
{
    private static Drive? s_drive;

    private static Drive TheDrive => s_drive ?? throw new InvalidOperationException("the class fixture did not mount");

    [ClassInitialize]
    public static async Task MountAsync(TestContext context)
    {
        s_drive = Drive.Create();
        await s_drive.MountAsync();
    }

    [ClassCleanup]
    public static async Task UnmountAsync()
    {
        if (s_drive is not null)
        {
            await s_drive.DisposeAsync();
        }
    }

    [TestMethod]
    public async Task Git_InitAddCommitCheckout_OfAGeneratedTree()
    {
        string git = Prerequisites.RequireProgram("git", "git");
        string repo = Path.Combine(TheDrive.MountPath, "repo");
        Directory.CreateDirectory(repo);
        var rng = new Random(11);
        var first = new Dictionary<string, byte[]>();
        for (int i = 0; i < 120; i++)
        {
            string rel = Path.Combine($"dir{i % 7}", $"sub{i % 3}", $"file{i}.txt");
            byte[] content = Encoding.UTF8.GetBytes(string.Join('\n', Enumerable.Range(0, rng.Next(1, 400)).Select(n => $"line {n} of {rel} {rng.Next()}")));
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(repo, rel))!);
            File.WriteAllBytes(Path.Combine(repo, rel), content);
            first[rel] = content;
        }
        var timeout = TimeSpan.FromMinutes(2);
        await Prerequisites.RunAsync(git, repo, timeout, "init", "-q", "-b", "main");
        await Prerequisites.RunAsync(git, repo, timeout, "add", "-A");
        await Prerequisites.RunAsync(git, repo, timeout, "commit", "-q", "-m", "first");
        foreach (string rel in first.Keys.Take(40))
        {
            File.AppendAllText(Path.Combine(repo, rel), "\nchanged\n");
        }
        File.Delete(Path.Combine(repo, first.Keys.Last()));
        await Prerequisites.RunAsync(git, repo, timeout, "commit", "-q", "-a", "-m", "second");
        await Prerequisites.RunAsync(git, repo, timeout, "checkout", "-q", "HEAD~1");
        foreach ((string rel, byte[] content) in first)
        {
            CollectionAssert.AreEqual(content, File.ReadAllBytes(Path.Combine(repo, rel)), rel);
        }
        await Prerequisites.RunAsync(git, repo, timeout, "checkout", "-q", "main");
        StringAssert.EndsWith(File.ReadAllText(Path.Combine(repo, first.Keys.First())), "\nchanged\n");
        string fsck = await Prerequisites.RunAsync(git, repo, timeout, "fsck", "--full", "--strict");
        Assert.IsFalse(fsck.Contains("error", StringComparison.OrdinalIgnoreCase), fsck);
        string status = await Prerequisites.RunAsync(git, repo, timeout, "status", "--porcelain");
        Assert.AreEqual("", status.Trim(), "a clean work tree after checkout");
    }

    [TestMethod]
    public async Task Sqlite_WalDatabase_IsCreatedFilledAndChecked()
    {
        string sqlite = Prerequisites.RequireProgram("sqlite3", "sqlite3");
        string dir = Path.Combine(TheDrive.MountPath, "sqlite");
        Directory.CreateDirectory(dir);
        const string script = """
            PRAGMA journal_mode=WAL;
            CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB);
            CREATE INDEX t_k ON t(k);
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
              INSERT INTO t(k, v) SELECT hex(randomblob(8)), randomblob(200) FROM n;
            DELETE FROM t WHERE id % 3 = 0;
            UPDATE t SET v = randomblob(300) WHERE id % 5 = 0;
            PRAGMA wal_checkpoint(TRUNCATE);
            PRAGMA integrity_check;
            SELECT count(*) FROM t;
            """;
        string output = await Prerequisites.RunAsync(sqlite, dir, TimeSpan.FromMinutes(3), "db.sqlite", script);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        CollectionAssert.Contains(lines, "wal", output);
        CollectionAssert.Contains(lines, "ok", output);
        Assert.AreEqual("13334", lines[^1], output);
        // A second process opens the same WAL database (shared memory through the mount's mmap).
        string again = await Prerequisites.RunAsync(sqlite, dir, TimeSpan.FromMinutes(1), "db.sqlite", "PRAGMA integrity_check; SELECT count(*) FROM t WHERE length(v) = 300;");
        StringAssert.StartsWith(again.Trim(), "ok");
    }

    [TestMethod]
    public async Task Fio_RandomReadWrite_VerifiesEveryBlock()
    {
        string fio = Prerequisites.RequireProgram("fio", "fio");
        string dir = Path.Combine(TheDrive.MountPath, "fio");
        Directory.CreateDirectory(dir);
        string output = await Prerequisites.RunAsync(fio, dir, TimeSpan.FromMinutes(4),
            "--name=verify", $"--directory={dir}", "--rw=randrw", "--bs=4k", "--size=24m", "--numjobs=2", "--ioengine=psync",
            "--verify=crc32c", "--verify_fatal=1", "--do_verify=1", "--fsync=64", "--group_reporting");
        StringAssert.Contains(output, "err= 0", output);
        Assert.IsFalse(output.Contains("verify: bad", StringComparison.OrdinalIgnoreCase), output);
    }

    [TestMethod]
    public async Task Dbench_ThirtySeconds_RunsWithoutErrors()
    {
        string dbench = Prerequisites.RequireProgram("dbench", "dbench");
        string dir = Path.Combine(TheDrive.MountPath, "dbench");
        Directory.CreateDirectory(dir);
        string output = await Prerequisites.RunAsync(dbench, dir, TimeSpan.FromMinutes(3),
            "-D", dir, "-t", "30", "-c", "/usr/share/dbench/client.txt", "2");
        StringAssert.Contains(output, "Throughput", output);
        Assert.IsFalse(output.Contains("ERROR", StringComparison.Ordinal), output);
    }
}
