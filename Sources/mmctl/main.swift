print("mmctl")
