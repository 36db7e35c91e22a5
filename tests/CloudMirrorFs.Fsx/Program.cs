using CloudMirrorFs.Fsx;

// Usage: CloudMirrorFs.Fsx --under-test DIR --reference DIR [--ops 100000] [--seed N] [--files 4] [--max-size 262144] [--log FILE]
// Exit codes: 0 the trees stayed identical (one JSON line on stdout), 1 a mismatch or an exception (report on
// stderr), 2 usage error.
return FsxCli.Run(args, Console.Out, Console.Error);
