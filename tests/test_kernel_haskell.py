"""The Haskell kernel (ghci in a pty) through jupyter_kernel_test and jupyter_client."""
from tests import kernellib


class HaskellKernelTests(kernellib.LanguageKernelTests):
    kernel_name = "haskell"
    language_name = "haskell"
    file_extension = ".hs"
    tools = ("ghci",)
    code_hello_world = 'putStrLn "hello, world"'
    code_stderr = 'import System.IO\nhPutStrLn stderr "oops"'
    code_generate_error = "foo 1"
    completion_samples = [{"text": "putSt", "matches": {"putStr", "putStrLn"}}]
    complete_code_samples = ["1 + 1", "f x = x * 2"]
    incomplete_code_samples = ["f x = (x", 'g = "abc']
    invalid_code_samples = ["f x = x)"]
    code_interrupt = "let spin n = spin (n + 1) :: Int\nprint (spin 0)"
    code_after_interrupt = 'putStrLn "alive"'
    code_stdin = 's <- getLine\nputStrLn ("got " ++ s)'

    def test_multiline_definitions(self) -> None:
        """A signature and its equations form one declaration; state carries over."""
        reply, out = self.collect(self.kc.execute(
            "twice :: Int -> Int\ntwice 0 = 0\ntwice x = 2 * x\nprint (twice 21)"))
        self.assertEqual(reply["content"]["status"], "ok", reply["content"])
        self.assertIn("42", out)
        reply, out = self.collect(self.kc.execute("print (twice 2)"))
        self.assertIn("4", out)
